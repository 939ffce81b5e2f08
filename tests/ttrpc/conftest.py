"""Fixtures for the ttrpc tests: a served example service and raw-frame helpers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest

from plugwire.ttrpc import Client
from plugwire.ttrpc.testing import RawPeer, make_server


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "t.sock")


@pytest.fixture
async def served(sock_path: str) -> AsyncIterator[str]:
    """The example service on a unix socket; yields its address."""
    async with make_server().listen(f"unix:{sock_path}") as bound:
        yield str(bound)


@pytest.fixture
async def client(served: str) -> AsyncIterator[Client]:
    async with await Client.connect(served) as c:
        yield c


@pytest.fixture
async def raw_peer() -> AsyncIterator[RawPeer]:
    """A raw peer connected to the example server over a socketpair (server runs in a task)."""
    a, b = socket.socketpair()
    server = make_server(max_message_size=1 << 16)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve_socket, a)
        stream = await anyio.abc.UNIXSocketStream.from_socket(b)
        peer = RawPeer(stream)
        try:
            yield peer
        finally:
            await stream.aclose()
            tg.cancel_scope.cancel()
