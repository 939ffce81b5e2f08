"""The port-forward bridge's stream survives a cancel that races with arriving data.

anyio's asyncio ``UNIXSocketStream`` waits for data with a raw reader callback that
calls ``set_result`` on its future. When the waiting task is cancelled by a callback
that runs earlier in the same loop iteration as the socket turns readable, that reader
callback raises ``InvalidStateError`` into the loop's exception handler, which the
anyio test runner turns into a failure (it failed a CI run of
``test_a_core_host_launches_and_closes_a_kube_plugin``). No cluster needed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from plugwire.kube.portforward import _socket_stream

pytestmark = pytest.mark.anyio

Wrap = Callable[[socket.socket], Awaitable[anyio.abc.ByteStream]]


async def _race(wrap: Wrap) -> list[dict[str, Any]]:
    """Cancel a pending receive from a reader callback that runs just before its own."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    ours, theirs = socket.socketpair()
    trigger_r, trigger_w = socket.socketpair()
    stream = await wrap(ours)
    try:
        with anyio.CancelScope() as scope:

            def cancel() -> None:
                loop.remove_reader(trigger_r)
                scope.cancel()

            async def receive() -> None:
                await stream.receive()

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                loop.add_reader(trigger_r, cancel)
                # Both sockets turn readable in one select; the trigger was readable
                # first, so its callback (the cancel) runs before the stream's reader.
                trigger_w.send(b"x")
                theirs.send(b"data")
                await anyio.sleep(0.2)
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
    finally:
        await stream.aclose()
        loop.set_exception_handler(previous)
        for sock in (theirs, trigger_r, trigger_w):
            sock.close()
    return errors


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_bridge_stream_has_no_cancel_race() -> None:
    assert await _race(_socket_stream) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_race_is_real_for_anyio_unix_streams() -> None:
    """The control: the stream type the bridge no longer uses does hit the race, so the
    test above can fail. If anyio fixes it, this test says so and both can go."""
    errors = await _race(anyio.abc.UNIXSocketStream.from_socket)
    assert any(isinstance(e.get("exception"), asyncio.InvalidStateError) for e in errors), errors
