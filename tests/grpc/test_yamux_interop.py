"""plugwire's yamux against hashicorp/yamux (newest release, Go) in both roles.

The Go peer (tests/interop/yamux/cmd/yamuxpeer) is driven by commands on its stdin and
serves streams by their first byte: E echo, H sha256, G generate, W wait for an error.
The Python side here serves the same kinds to streams the Go peer opens.

``role`` says which side is the yamux *client*: "go-client" has Go dial a unix socket
Python listens on; "python-client" has Python dial the Go peer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from support.gobuild import build_go

from plugwire.core.errors import ConnectionClosedError
from plugwire.grpc import yamux
from plugwire.grpc.yamux import (
    RemoteGoAwayError,
    SessionClosedError,
    StreamResetError,
    StreamState,
    YamuxConfig,
    YamuxTimeoutError,
)

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

QUIET = YamuxConfig(enable_keepalive=False)
ROLES = ["go-client", "python-client"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def yamuxpeer() -> Path:
    binary: Path = build_go("yamux", "./cmd/yamuxpeer")
    return binary


def pattern(seed: int, size: int) -> bytes:
    block = bytes(range(251))
    start = seed % 251
    return (block * (size // 251 + 2))[start : start + size]


class GoPeer:
    """The Go process: send a command, read its one-line reply; ``event`` lines that
    arrive in between are kept in :attr:`events`."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self._stdin = process.stdin
        self._rx = BufferedByteReceiveStream(process.stdout)
        self.events: list[str] = []

    async def line(self, timeout: float = 60) -> str:
        with anyio.fail_after(timeout):
            raw = await self._rx.receive_until(b"\n", 1 << 16)
        return raw.decode()

    async def reply(self, timeout: float = 60) -> str:
        while True:
            line = await self.line(timeout)
            if line.startswith("event "):
                self.events.append(line)
                continue
            return line

    async def cmd(self, command: str, timeout: float = 60) -> str:
        await self._stdin.send(command.encode() + b"\n")
        return await self.reply(timeout)

    async def event(self, stream_id: int, timeout: float = 10) -> str:
        """The next ``event <kind> <stream id> <error>`` line about ``stream_id``."""

        def about(line: str) -> bool:
            return line.split(" ", 3)[2:3] == [str(stream_id)]

        for seen in self.events:
            if about(seen):
                return seen
        while True:
            line = await self.line(timeout)
            if about(line):
                return line
            self.events.append(line)


async def serve_kinds(session: yamux.Session) -> None:
    """Serve streams the Go peer opens, like the Go peer serves ours."""

    async def handle(stream: yamux.YamuxStream) -> None:
        async with stream:
            rx = BufferedByteReceiveStream(stream)
            kind = await rx.receive_exactly(1)
            if kind == b"E":
                async for chunk in rx:
                    await stream.send(chunk)
            elif kind == b"H":
                digest = hashlib.sha256()
                count = 0
                async for chunk in rx:
                    digest.update(chunk)
                    count += len(chunk)
                await stream.send(f"{count} {digest.hexdigest()}".encode())
            elif kind == b"G":
                (size,) = struct.unpack(">Q", await rx.receive_exactly(8))
                await stream.send(pattern(size, size))
            await stream.send_eof()

    async with anyio.create_task_group() as tg:
        async for stream in session:
            tg.start_soon(handle, stream)


@asynccontextmanager
async def go_peer(
    binary: Path,
    role: str,
    *,
    go_args: tuple[str, ...] = (),
    config: YamuxConfig = QUIET,
    serve: bool = True,
) -> AsyncIterator[tuple[yamux.Session, GoPeer]]:
    with tempfile.TemporaryDirectory(prefix="pw-ymx-") as tmp:
        path = os.path.join(tmp, "s")
        listener: anyio.abc.SocketListener | None = None
        if role == "go-client":
            listener = await anyio.create_unix_listener(path)
            args = [str(binary), "-dial", path, "-client", *go_args]
        else:
            args = [str(binary), "-listen", path, *go_args]
        process = await anyio.open_process(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
        )
        peer = GoPeer(process)
        try:
            if listener is not None:
                with anyio.fail_after(30):
                    conn = await listener.accept()
                await listener.aclose()
            else:
                assert await peer.line(30) == "ready"
                conn = await anyio.connect_unix(path)
            assert await peer.line(30) == "session"
            session = yamux.Session(conn, client=role != "go-client", config=config, name="go")
            async with session, anyio.create_task_group() as tg:
                if serve:
                    tg.start_soon(serve_kinds, session)
                yield session, peer
                tg.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 (polls plain state)
            await anyio.sleep(0.01)


async def go_streams(go: GoPeer, expected: int) -> str:
    """Go's stream count once it reached ``expected`` (or the last seen after 5 s):
    hashicorp/yamux forgets a stream just after it sends or handles the final FIN."""
    reply = ""
    with anyio.move_on_after(5):
        while (reply := await go.cmd("streams")) != f"ok streams {expected}":  # noqa: ASYNC110
            await anyio.sleep(0.02)
    return reply


async def python_opens(session: yamux.Session, kind: bytes, data: bytes) -> bytes:
    stream = await session.open_stream()
    out = bytearray()
    async with stream, anyio.create_task_group() as tg:

        async def write() -> None:
            await stream.send(kind + data)
            await stream.send_eof()

        tg.start_soon(write)
        async for chunk in stream:
            out += chunk
    return bytes(out)


@pytest.mark.parametrize("role", ROLES)
async def test_go_opens_many_concurrent_streams_with_large_payloads(
    yamuxpeer: Path, role: str
) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        assert await go.cmd("echo 32 300000") == "ok echo 32 300000"
        assert await go.cmd("hash 4 1500000") == "ok hash 4 1500000"
        assert await go.cmd("gen 4 1500000") == "ok gen 4 1500000"
        assert await go.cmd("echo 200 10") == "ok echo 200 10"
        await eventually(lambda: session.num_streams == 0)
        assert await go_streams(go, 0) == "ok streams 0"
        assert go.events == []


@pytest.mark.parametrize("role", ROLES)
async def test_python_opens_many_concurrent_streams_with_large_payloads(
    yamuxpeer: Path, role: str
) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        results: dict[str, bool] = {}

        async def echo(i: int) -> None:
            data = pattern(i, 300_000)
            results[f"E{i}"] = await python_opens(session, b"E", data) == data

        async def digest(i: int) -> None:
            data = pattern(i, 1_500_000)
            want = f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
            results[f"H{i}"] = await python_opens(session, b"H", data) == want

        async def generate(i: int) -> None:
            size = 1_500_000 + i
            got = await python_opens(session, b"G", struct.pack(">Q", size))
            results[f"G{i}"] = got == pattern(size, size)

        async with anyio.create_task_group() as tg:
            for i in range(32):
                tg.start_soon(echo, i)
            for i in range(4):
                tg.start_soon(digest, i)
                tg.start_soon(generate, i)
        assert results and all(results.values()), results
        assert await go.cmd("ping") != ""
        await eventually(lambda: session.num_streams == 0)
        assert await go_streams(go, 0) == "ok streams 0"
        assert go.events == []


@pytest.mark.parametrize("role", ROLES)
async def test_both_sides_open_streams_at_the_same_time(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        results: list[bool] = []
        replies: list[str] = []

        async def python_side(i: int) -> None:
            data = pattern(i, 400_000)
            results.append(await python_opens(session, b"E", data) == data)

        async def go_side() -> None:
            replies.append(await go.cmd("echo 16 400000"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(go_side)
            for i in range(16):
                tg.start_soon(python_side, i)
        assert replies == ["ok echo 16 400000"]
        assert results == [True] * 16


@pytest.mark.parametrize("role", ROLES)
async def test_stream_ids_follow_the_roles(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"E")
        await stream.aclose()
        assert stream.stream_id % 2 == (1 if role == "python-client" else 0)
        assert session.is_client is (role == "python-client")
        assert await go.cmd("ping") != ""


@pytest.mark.parametrize("role", ROLES)
async def test_ping_both_ways(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        rtt = await session.ping()
        assert 0 < rtt < 5
        reply = await go.cmd("ping")
        assert reply.startswith("ok ping ")
        assert int(reply.split()[2]) > 0


@pytest.mark.parametrize("role", ROLES)
async def test_larger_windows_are_honoured_both_ways(yamuxpeer: Path, role: str) -> None:
    big = YamuxConfig(enable_keepalive=False, max_stream_window_size=1 << 20)
    async with go_peer(yamuxpeer, role, go_args=("-window", str(1 << 20)), config=big) as (
        session,
        go,
    ):
        stream = await session.open_stream()
        await stream.send(b"H")
        # Go's ACK (sent when its accept loop takes the stream) grants the larger window.
        await eventually(lambda: stream.send_window == (1 << 20) - 1)
        data = pattern(7, 4_000_000)
        await stream.send(data)
        await stream.send_eof()
        reply = b""
        async for chunk in stream:
            reply += chunk
        assert reply == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
        assert await go.cmd("gen 2 4000000") == "ok gen 2 4000000"


@pytest.mark.parametrize("role", ROLES)
async def test_python_goaway_stops_go_from_opening(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        await session.go_away()
        assert (await go.cmd("ping")).startswith("ok ping")  # GoAway was read before
        assert await go.cmd("expect-reset") == "err open: remote end is not accepting connections"
        # Python can still open streams to Go.
        assert await python_opens(session, b"E", b"still fine") == b"still fine"


@pytest.mark.parametrize("role", ROLES)
async def test_go_goaway_stops_python_from_opening(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"Eaccepted")
        assert await stream.receive() == b"accepted"  # Go has accepted it before its GoAway
        assert await go.cmd("goaway") == "ok goaway"
        await session.ping()
        assert session.remote_go_away
        with pytest.raises(RemoteGoAwayError):
            await session.open_stream()
        await stream.send(b"old stream works")
        await stream.send_eof()
        assert await stream.receive() == b"old stream works"
        assert await go.cmd("echo 2 1000") == "ok echo 2 1000"


@pytest.mark.parametrize("role", ROLES)
async def test_python_backlog_overflow_resets_go_streams(yamuxpeer: Path, role: str) -> None:
    small = YamuxConfig(enable_keepalive=False, accept_backlog=2)
    async with go_peer(yamuxpeer, role, config=small, serve=False) as (session, go):
        assert await go.cmd("flood 5") == "ok flood 3"
        assert session.num_streams == 2


@pytest.mark.parametrize("role", ROLES)
async def test_go_backlog_overflow_resets_python_streams(yamuxpeer: Path, role: str) -> None:
    go_args = ("-no-accept", "-backlog", "2")
    async with go_peer(yamuxpeer, role, go_args=go_args) as (session, go):
        streams = [await session.open_stream() for _ in range(5)]
        await eventually(lambda: sum(s.state is StreamState.RESET for s in streams) == 3)
        await session.ping()
        assert [s.state for s in streams[:2]] == [StreamState.SYN_SENT] * 2
        for stream in streams[2:]:
            with pytest.raises(StreamResetError) as info:
                await stream.receive()
            assert info.value.by_peer
        assert await go_streams(go, 2) == "ok streams 2"


@pytest.mark.parametrize("role", ROLES)
async def test_python_reset_reaches_go(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"W" + b"x" * 1000)
        await session.ping()
        stream.reset()
        event = await go.event(stream.stream_id)
        # "event W": Go's handler was reading; "event ?": the RST came before it read
        # the kind byte (a reset stream drops buffered data in hashicorp/yamux).
        assert event.split()[1] in ("W", "?"), event
        assert event.endswith("connection reset"), event
        with pytest.raises(StreamResetError):
            await stream.send(b"more")


@pytest.mark.parametrize("role", ROLES)
async def test_python_half_close_and_go_half_close(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"Eone ")
        assert await stream.receive() == b"one "
        await stream.send(b"two")
        await stream.send_eof()  # Go sees EOF, finishes echoing, then closes its half
        rest = b""
        async for chunk in stream:
            rest += chunk
        assert rest == b"two"
        await stream.wait_closed()
        assert stream.state is StreamState.CLOSED
        assert await go_streams(go, 0) == "ok streams 0"


@pytest.mark.parametrize("role", ROLES)
async def test_go_close_ends_the_python_session(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"Ehello")
        assert await stream.receive() == b"hello"
        assert await go.cmd("close") == "ok close"
        with anyio.fail_after(10):
            await session.wait_closed()
        assert isinstance(session.error, ConnectionClosedError)
        with pytest.raises(SessionClosedError):
            await stream.receive()
        with pytest.raises(SessionClosedError):
            await session.open_stream()


@pytest.mark.parametrize("role", ROLES)
async def test_python_close_ends_the_go_session(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        assert await go.cmd("echo 4 1000") == "ok echo 4 1000"
        await session.aclose()
        assert await go.cmd("wait-closed 5000") == "ok closed"
        assert session.error is None


@pytest.mark.parametrize("role", ROLES)
async def test_keepalive_both_ways_and_a_frozen_go_peer(yamuxpeer: Path, role: str) -> None:
    config = YamuxConfig(keepalive_interval=0.05, connection_write_timeout=0.5)
    async with go_peer(yamuxpeer, role, go_args=("-keepalive-ms", "50"), config=config) as (
        session,
        go,
    ):
        await anyio.sleep(0.5)  # ten keepalive rounds each way
        assert not session.closed
        assert await go.cmd("wait-closed 10") == "err still open"
        go.process.send_signal(signal.SIGSTOP)
        try:
            with anyio.fail_after(10):
                await session.wait_closed()
        finally:
            go.process.send_signal(signal.SIGKILL)
        assert isinstance(session.error, YamuxTimeoutError)


@pytest.mark.parametrize("role", ROLES)
async def test_go_rejects_a_frame_beyond_its_window(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, _go):
        stream = await session.open_stream()
        await stream.send(b"W")
        await session.ping()
        # Bypass flow control: one data frame larger than the 256 KiB window.
        size = yamux.INITIAL_STREAM_WINDOW + 1
        header = yamux.encode_header(yamux.FrameType.DATA, 0, stream.stream_id, size)
        # Go hangs up as soon as it reads the header. Written through the session's own
        # frame path, which takes turns with its writer task (the transport directly
        # raced that task's writes: BusyResourceError on trio).
        with contextlib.suppress(SessionClosedError):
            await session._send_frame(header, bytes(size))
        with anyio.fail_after(10):
            await session.wait_closed()
        # hashicorp/yamux queues GoAway PROTOCOL_ERROR and closes the connection; which
        # of the two Python sees first is up to Go's scheduler.
        error = session.error
        assert isinstance(error, ConnectionClosedError), error
        if isinstance(error, RemoteGoAwayError):
            assert error.code == yamux.GoAwayCode.PROTOCOL_ERROR
        with pytest.raises(SessionClosedError):
            await stream.receive()


@pytest.mark.parametrize("role", ROLES)
async def test_killed_go_peer_fails_python_streams(yamuxpeer: Path, role: str) -> None:
    async with go_peer(yamuxpeer, role) as (session, go):
        stream = await session.open_stream()
        await stream.send(b"Wpending")
        await session.ping()
        go.process.kill()
        with anyio.fail_after(10), pytest.raises(SessionClosedError):
            await stream.receive()
        assert isinstance(session.error, ConnectionClosedError)
