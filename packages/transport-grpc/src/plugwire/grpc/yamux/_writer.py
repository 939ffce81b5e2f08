"""The write side of a yamux session: the frame queue, the writer task, direct writes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from plugwire.core.errors import ConnectionClosedError

from ._config import YamuxConfig
from ._errors import SessionClosedError, YamuxTimeoutError
from ._frame import GoAwayCode
from ._sockets import shutdown_socket

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = ["SessionWriter"]

logger = logging.getLogger("plugwire.grpc.yamux")

_WRITE_BATCH = 512 * 1024
_NO_COPY_SIZE = 64 * 1024


class SessionWriter:
    """Mixin of :class:`~._session.Session`: everything that writes to the transport.

    Frames are queued for the writer task (:meth:`_enqueue`), or written by the
    calling task itself when nothing else is queued (:meth:`_send_frame`); either way
    they keep their order.
    """

    _transport: anyio.abc.ByteStream
    _config: YamuxConfig
    _name: str | None
    _closed: bool
    _send_tx: MemoryObjectSendStream[bytes]
    _send_rx: MemoryObjectReceiveStream[bytes]
    _pending: int
    _writing: bool
    _write_idle: anyio.Event | None
    _writer_scope: anyio.CancelScope
    _writer_done: anyio.Event
    _reader_done: anyio.Event

    if TYPE_CHECKING:

        def _begin_shutdown(
            self, error: BaseException | None, *, go_away: GoAwayCode | None
        ) -> None: ...

        def _closed_exception(self) -> SessionClosedError: ...

    def _enqueue(self, *parts: bytes) -> None:
        try:
            for part in parts:
                self._send_tx.send_nowait(part)
                self._pending += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._closed_exception() from None

    def _enqueue_quiet(self, part: bytes) -> None:
        try:
            self._send_tx.send_nowait(part)
            self._pending += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def _send_frame(self, header: bytes, payload: bytes) -> bool:
        """Write a data frame. When nothing is queued or being written, the calling
        task writes it itself (saving a hand-off to the writer task) and this returns
        True; otherwise the frame is queued behind the others and this returns False.
        Either way frames keep their order."""
        if self._pending or self._writing or self._closed:
            self._enqueue(header, payload)
            return False
        self._writing = True
        try:
            # Shielded: a write cancelled halfway would corrupt the framing for every
            # stream. The write timeout still bounds it.
            with anyio.CancelScope(shield=True):
                with anyio.fail_after(self._config.connection_write_timeout):
                    await self._write_parts(self._transport, [header, payload])
        except Exception as exc:
            self._begin_shutdown(self._write_failure(exc), go_away=None)
            raise self._closed_exception() from None
        finally:
            self._writing = False
            self._notify_write_idle()
        return True

    def _notify_write_idle(self) -> None:
        event = self._write_idle
        if event is not None:
            self._write_idle = None
            event.set()

    async def _wait_write_idle(self) -> None:
        while self._writing:
            if self._write_idle is None:
                self._write_idle = anyio.Event()
            await self._write_idle.wait()

    @staticmethod
    async def _write_parts(transport: anyio.abc.ByteStream, parts: list[bytes]) -> None:
        if len(parts) == 1:
            await transport.send(parts[0])
        elif len(parts) == 2 and len(parts[1]) >= _NO_COPY_SIZE:
            # A large payload goes out as is rather than copied behind its header.
            await transport.send(parts[0])
            await transport.send(parts[1])
        else:
            await transport.send(b"".join(parts))

    def _write_failure(self, exc: BaseException) -> BaseException:
        if isinstance(exc, TimeoutError):
            timeout = self._config.connection_write_timeout
            return YamuxTimeoutError(
                "yamux connection write timed out",
                peer=self._name,
                step="yamux write",
                expected=f"each write to finish within {timeout} s",
            )
        if isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)):
            return ConnectionClosedError(
                "connection lost while writing", peer=self._name, step="yamux write", seen=exc
            )
        logger.error("yamux write failed", exc_info=exc)
        return exc

    async def _run_writer(self) -> None:
        rx = self._send_rx
        transport = self._transport
        timeout = self._config.connection_write_timeout
        try:
            with self._writer_scope:
                while True:
                    try:
                        first = await rx.receive()
                    except anyio.EndOfStream:
                        break
                    parts = [first]
                    size = len(first)
                    while size < _WRITE_BATCH:
                        try:
                            part = rx.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        parts.append(part)
                        size += len(part)
                    await self._wait_write_idle()  # a stream task may be writing directly
                    self._writing = True
                    try:
                        with anyio.fail_after(timeout):
                            await self._write_parts(transport, parts)
                    finally:
                        self._writing = False
                        self._pending -= len(parts)
        except Exception as exc:
            self._begin_shutdown(self._write_failure(exc), go_away=None)
        finally:
            self._begin_shutdown(None, go_away=None)
            rx.close()
            with anyio.CancelScope(shield=True):
                await self._wait_write_idle()
                # End the reader's pending receive before closing the transport.
                if shutdown_socket(transport):
                    with anyio.move_on_after(1):
                        await self._reader_done.wait()
            await anyio.aclose_forcefully(transport)
            self._writer_done.set()
