"""Serialised, batching frame writer shared by the client and the server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import ConnectionClosedError

__all__ = ["FrameWriter"]

_HIGH_WATER = 1 << 20


def _shield() -> contextlib.AbstractContextManager[Any]:
    """A cancel-shielding scope: trio's own under trio (anyio's wrapper costs more)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.CancelScope(shield=True)
    return anyio.CancelScope(shield=True)


class FrameWriter:
    """Writes whole frames to a byte stream without interleaving them.

    The first writer sends; writers arriving while a send is in progress append
    to a batch the active writer flushes in one ``send`` (many concurrent calls
    cost few syscalls). Sends are shielded from cancellation so a frame is never
    cut in half. Writers wait only when more than 1 MiB is queued. After a failed
    send every ``write`` raises :class:`ConnectionClosedError`.
    """

    __slots__ = (
        "_drained",
        "_error",
        "_flushing",
        "_pending",
        "_pending_size",
        "_stream",
        "_try_send",
        "peer",
    )

    def __init__(self, stream: anyio.abc.ByteSendStream, peer: str) -> None:
        self._stream = stream
        self.peer = peer
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flushing = False
        self._error: BaseException | None = None
        self._drained: anyio.Event | None = None
        # Streams that can take a write synchronously (our asyncio socket stream)
        # skip the shielded await entirely.
        self._try_send = getattr(stream, "try_send", None)

    @property
    def broken(self) -> bool:
        return self._error is not None

    def _closed_error(self) -> ConnectionClosedError:
        err = ConnectionClosedError("ttrpc connection is closed", peer=self.peer, step="send")
        err.__cause__ = self._error
        return err

    async def write(self, data: bytes, cork: bool = True) -> None:
        """Write one or more whole frames. ``cork=False`` hints that no other frame
        is likely to follow soon (a lone call), so batching would only add latency."""
        if self._error is not None:
            raise self._closed_error()
        if not self._flushing and self._try_send is not None and self._try_send(data, cork):
            return
        if self._flushing:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size > _HIGH_WATER:
                if self._drained is None:
                    self._drained = anyio.Event()
                await self._drained.wait()
                if self._error is not None:
                    raise self._closed_error()
            return
        self._flushing = True
        try:
            with _shield():
                await self._stream.send(data)
                while self._pending:
                    batch = self._pending
                    self._pending = []
                    self._pending_size = 0
                    await self._stream.send(b"".join(batch) if len(batch) > 1 else batch[0])
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._error = exc
            self._pending = []
            raise self._closed_error() from exc
        finally:
            self._flushing = False
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    def post(self, data: bytes) -> bool:
        """Write ``data`` without awaiting when that is possible: sent now, queued in
        the batch of a send in progress, or dropped because the connection is broken
        (what a caller ignoring :class:`ConnectionClosedError` wants). False: the
        caller must ``await write(data)`` (nothing synchronous is possible, or over
        1 MiB is already queued)."""
        if self._error is not None:
            return True
        if self._flushing:
            if self._pending_size > _HIGH_WATER:
                return False  # the peer is not reading: the caller waits in write()
            self._pending.append(data)
            self._pending_size += len(data)
            return True
        return self._try_send is not None and bool(self._try_send(data, True))

    def fail(self, exc: BaseException) -> None:
        """Mark the writer broken (the connection is going away)."""
        if self._error is None:
            self._error = exc
