"""``plugin.GRPCStdio``: a plugin's stdout/stderr, mirrored to the host.

Plugin side: after the announce line is out, :class:`StdioCapture` replaces
``sys.stdout`` and ``sys.stderr`` with writers that feed ``StreamStdio``; the host's
``SyncStdout``/``SyncStderr`` receive what the plugin prints. (The real stdout must
carry nothing but the announce line; the real stderr carries hclog log lines.)

Host side: :func:`pump_stdio` reads the stream and writes each chunk to the
matching writer.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import Protocol, TextIO

from google.protobuf import empty_pb2

import grpc

from .._generated.plugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc

__all__ = ["BytesWriter", "StdioCapture", "StdioServicer", "pump_stdio"]

STDOUT = grpc_stdio_pb2.StdioData.STDOUT
STDERR = grpc_stdio_pb2.StdioData.STDERR
_CHUNK = 1024  # go-plugin's grpcStdioBuffer

_log = logging.getLogger("plugwire.grpc.goplugin.stdio")


class BytesWriter(Protocol):
    """Anything with ``write(bytes)``: ``sys.stdout.buffer``, ``io.BytesIO``, a file."""

    def write(self, data: bytes, /) -> object: ...


class _Sink(io.RawIOBase):
    def __init__(self, capture: StdioCapture, channel: int) -> None:
        super().__init__()
        self._capture = capture
        self._channel = channel

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._capture.push(self._channel, chunk)
        return len(chunk)


class StdioCapture:
    """Buffers stdout/stderr bytes until the host streams them.

    Keeps at most ``limit`` bytes while nobody streams (oldest dropped). ``push`` is
    safe from any thread.
    """

    def __init__(self, *, limit: int = 1 << 20) -> None:
        self._limit = limit
        self._chunks: collections.deque[tuple[int, bytes]] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._saved: tuple[TextIO, TextIO] | None = None
        self._closed = False
        self._streams = 0  # StreamStdio calls not ended yet
        self._ended: asyncio.Event | None = None
        self.dropped = 0

    def push(self, channel: int, data: bytes) -> None:
        """Queue ``data`` for ``channel`` (STDOUT 1, STDERR 2)."""
        if not data:
            return
        with self._lock:
            self._chunks.append((channel, data))
            self._size += len(data)
            while self._size > self._limit and len(self._chunks) > 1:
                _ch, old = self._chunks.popleft()
                self._size -= len(old)
                self.dropped += len(old)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._ready.set)

    def install(self) -> None:
        """Replace ``sys.stdout``/``sys.stderr`` with capturing writers (call on the loop)."""
        self._loop = asyncio.get_running_loop()
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = self._writer(STDOUT)
        sys.stderr = self._writer(STDERR)

    def restore(self) -> None:
        """Put the original ``sys.stdout``/``sys.stderr`` back."""
        if self._saved is not None:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (ValueError, OSError):
                    pass
            sys.stdout, sys.stderr = self._saved
            self._saved = None

    def close(self) -> None:
        """End :meth:`chunks` once what is queued is sent (call on the loop).

        The plugin calls this when it shuts down, so ``StreamStdio`` finishes with OK
        instead of being cancelled by the server's stop (which grpcio logs as an
        unhandled ``CancelledError``) and the server stops without waiting for it.
        """
        self._closed = True
        self._ready.set()

    async def wait_sent(self, timeout: float) -> bool:
        """After :meth:`close`: wait until every ``StreamStdio`` call has ended, its last
        data and status handed to gRPC (a plugin about to exit calls this, so what it
        wrote reaches the host); False when ``timeout`` passed first."""
        if self._streams == 0:
            return True
        self._ended = self._ended or asyncio.Event()
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _stream_started(self) -> None:
        self._streams += 1

    def _stream_ended(self, _call: object = None) -> None:
        self._streams -= 1
        if self._streams == 0 and self._ended is not None:
            self._ended.set()

    def _writer(self, channel: int) -> TextIO:
        return io.TextIOWrapper(
            _Sink(self, channel),  # type: ignore[type-var]
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
            write_through=True,
        )

    def _take(self) -> list[tuple[int, bytes]]:
        with self._lock:
            items = list(self._chunks)
            self._chunks.clear()
            self._size = 0
            self._ready.clear()
        return items

    async def chunks(self) -> AsyncIterator[grpc_stdio_pb2.StdioData]:
        """Yield StdioData messages (at most 1 KiB each) until :meth:`close`."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        while True:
            items = self._take()
            if not items:
                if self._closed:
                    return
                await self._ready.wait()
                continue
            for channel, data in items:
                for start in range(0, len(data), _CHUNK):
                    chunk = data[start : start + _CHUNK]
                    yield grpc_stdio_pb2.StdioData(channel=channel, data=chunk)  # type: ignore[arg-type]


class StdioServicer(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    """Streams a :class:`StdioCapture` to the host (data is sent once)."""

    def __init__(self, capture: StdioCapture) -> None:
        self._capture = capture

    async def StreamStdio(
        self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[grpc_stdio_pb2.StdioData]:
        capture = self._capture
        capture._stream_started()
        context.add_done_callback(capture._stream_ended)  # type: ignore[arg-type]  # grpc-stubs: a class
        async for item in capture.chunks():
            yield item


async def pump_stdio(
    channel: grpc.aio.Channel,
    stdout: BytesWriter | None,
    stderr: BytesWriter | None,
    *,
    logger: logging.Logger = _log,
) -> None:
    """Copy the plugin's ``StreamStdio`` to ``stdout``/``stderr`` until it ends.

    A plugin without the stdio service (Unimplemented/Unavailable) is logged and
    ignored, as go-plugin does.
    """
    stub = grpc_stdio_pb2_grpc.GRPCStdioStub(channel)
    call = stub.StreamStdio(empty_pb2.Empty())
    try:
        async for data in call:
            if data.channel == STDOUT:
                target = stdout
            elif data.channel == STDERR:
                target = stderr
            else:
                logger.warning("unknown stdio channel %s, dropping", data.channel)
                continue
            if target is not None:
                target.write(data.data)
                flush = getattr(target, "flush", None)
                if callable(flush):
                    flush()
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.UNIMPLEMENTED,
            grpc.StatusCode.CANCELLED,
        ):
            logger.debug("stdio stream ended: %s", exc.code().name)
        else:
            logger.warning("stdio stream failed: %s", exc.details())
    finally:
        call.cancel()
