"""plugwire.core._unix: the unix streams every transport dials, accepts and wraps.

anyio's asyncio ``UNIXSocketStream`` waits for data with a raw reader callback that
calls ``set_result`` on its future. When the waiting task is cancelled by a callback
that runs earlier in the same loop iteration as the socket turns readable, that reader
callback raises ``InvalidStateError`` into the loop's exception handler, which the
anyio test runner turns into a failure (it failed a CI run of the kube port-forward
bridge; the HTTP server had its own workaround). The streams from
:func:`stream_from_socket`, :func:`connect_unix` and :func:`create_unix_listener` have
no such race, on either backend, and behave as anyio's otherwise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from plugwire.core._unix import connect_unix, create_unix_listener, stream_from_socket

pytestmark = pytest.mark.anyio

Wrap = Callable[[socket.socket], Awaitable[anyio.abc.ByteStream]]


async def _race(wrap: Wrap) -> list[dict[str, Any]]:
    ours, theirs = socket.socketpair()
    return await _race_with(wrap, ours, theirs)


async def _race_with(
    wrap: Wrap, ours: socket.socket, theirs: socket.socket
) -> list[dict[str, Any]]:
    """Cancel a pending receive from a reader callback that runs just before its own:
    ``wrap(ours)`` is the stream under test, ``theirs`` its peer's socket."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
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
async def test_a_wrapped_socket_has_no_cancel_race() -> None:
    assert await _race(stream_from_socket) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_race_is_real_for_anyio_unix_streams() -> None:
    """The control: the stream type plugwire no longer uses does hit the race, so the
    test above can fail. If anyio fixes it, this test says so and both can go."""
    errors = await _race(anyio.abc.UNIXSocketStream.from_socket)
    assert any(isinstance(e.get("exception"), asyncio.InvalidStateError) for e in errors), errors


async def _dialled_and_accepted(
    path: str,
) -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream, Any]:
    listener = await create_unix_listener(path, mode=0o600)
    dialled = await connect_unix(path)
    accepted = await listener.accept()
    return dialled, accepted, listener


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("side", ["dialled", "accepted"])
async def test_dialled_and_accepted_streams_have_no_cancel_race(tmp_path: Any, side: str) -> None:
    dialled, accepted, listener = await _dialled_and_accepted(str(tmp_path / "s"))
    ours = dialled if side == "dialled" else accepted
    raw = ours.extra(anyio.abc.SocketAttribute.raw_socket)
    other = accepted if side == "dialled" else dialled

    async def wrap(sock: socket.socket) -> anyio.abc.ByteStream:
        assert sock is raw
        return ours

    # _race sends through its own peer socket; here the peer is the other stream's.
    peer = other.extra(anyio.abc.SocketAttribute.raw_socket)
    fd = os.dup(peer.fileno())
    try:
        errors = await _race_with(wrap, raw, socket.socket(fileno=fd))
    finally:
        await other.aclose()
        await listener.aclose()
    assert errors == []


async def test_round_trip_eof_and_mode(tmp_path: Any) -> None:
    path = str(tmp_path / "s")
    dialled, accepted, listener = await _dialled_and_accepted(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        await dialled.send(b"ping")
        assert await accepted.receive() == b"ping"
        await accepted.send(b"pong")
        assert await dialled.receive() == b"pong"
        await dialled.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await accepted.receive()
        await accepted.send(b"after eof")  # half-closed: the other way still works
        assert await dialled.receive() == b"after eof"
        assert listener.extra(anyio.abc.SocketAttribute.local_address) == path
    finally:
        for stream in (dialled, accepted):
            await stream.aclose()
        await listener.aclose()


async def test_dialling_nothing_is_the_os_error(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError):
        await connect_unix(tmp_path / "missing")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale"))  # bound, never listening
    try:
        with pytest.raises(ConnectionRefusedError):
            await connect_unix(tmp_path / "stale")
    finally:
        stale.close()


async def test_closing_the_listener_ends_a_waiting_accept(tmp_path: Any) -> None:
    listener = await create_unix_listener(str(tmp_path / "s"))
    result: list[BaseException] = []

    async def accept() -> None:
        try:
            await listener.accept()
        except BaseException as exc:
            result.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept)
        await anyio.wait_all_tasks_blocked()
        await listener.aclose()
    assert len(result) == 1 and isinstance(result[0], anyio.ClosedResourceError), result
    with pytest.raises(anyio.ClosedResourceError):
        await listener.accept()


async def test_serve_runs_the_handler_per_connection(tmp_path: Any) -> None:
    path = str(tmp_path / "s")
    listener = await create_unix_listener(path)
    seen: list[bytes] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = await stream.receive()
            seen.append(data)
            await stream.send(data.upper())

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        for word in (b"one", b"two"):
            async with await connect_unix(path) as client:
                await client.send(word)
                assert await client.receive() == word.upper()
        tg.cancel_scope.cancel()
    await listener.aclose()
    assert seen == [b"one", b"two"]
