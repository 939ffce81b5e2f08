"""plugwire.ttrpc.sockets: the asyncio fast-path stream keeps write order."""

from __future__ import annotations

import socket

import anyio
import pytest

from plugwire.ttrpc.sockets import AsyncioSocketStream, socket_stream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # AsyncioSocketStream is the asyncio fast path


@pytest.mark.anyio
async def test_send_after_corked_try_send_keeps_order() -> None:
    left, right = socket.socketpair()
    writer = await socket_stream(left)
    reader = await socket_stream(right)
    assert isinstance(writer, AsyncioSocketStream)
    try:
        # frames corked by try_send() in this loop iteration, then a send():
        # the peer must see them in the order they were written
        assert writer.try_send(b"1", cork=True)
        assert writer.try_send(b"2", cork=True)
        await writer.send(b"3")
        writer.try_send(b"4", cork=False)
        received = b""
        with anyio.fail_after(5):
            while len(received) < 4:
                received += await reader.receive()
        assert received == b"1234"
    finally:
        await writer.aclose()
        await reader.aclose()
