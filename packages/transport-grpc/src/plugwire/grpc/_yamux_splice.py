"""Splicing byte streams for the yamux bridges: :func:`splice` and the bridges' base."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from plugwire.core._unix import connect_unix
from plugwire.core.errors import ClosedError, PlugwireError

from .yamux import Session, YamuxStream
from .yamux._sockets import shutdown_socket

__all__ = ["BridgeBase", "NoRouteError", "Target", "connect_target", "splice"]

logger = logging.getLogger("plugwire.grpc.yamux.bridge")

#: Where a bridged stream goes: a unix socket path, or an async function that connects.
Target = str | os.PathLike[str] | Callable[[], Awaitable[anyio.abc.ByteStream]]

_CHUNK = 256 * 1024


class NoRouteError(PlugwireError, LookupError):
    """A knock named an id that has no registered target (go-plugin's wording,
    ``no listener for id N``, is the message: send it back in the knock ack)."""


async def connect_target(target: Target) -> anyio.abc.ByteStream:
    if callable(target):
        return await target()
    return await connect_unix(target)


async def _interrupt(stream: anyio.abc.ByteStream) -> None:
    # End the stream so that a receive pending on it (in the other direction's task)
    # returns: reset a yamux stream, shut a socket down, or close anything else.
    if isinstance(stream, YamuxStream):
        stream.reset()
    elif not shutdown_socket(stream):
        await anyio.aclose_forcefully(stream)


async def _abort_pair(a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
    await _interrupt(a)
    await _interrupt(b)


async def splice(a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
    """Copy ``a`` -> ``b`` and ``b`` -> ``a`` until both directions reached EOF (each
    EOF is passed on as a half-close), then close both. If either side fails, or the
    splice is cancelled, a yamux side is reset and both are closed. Never raises
    for I/O errors (they are logged at debug level)."""
    failed = False

    async def copy(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        nonlocal failed
        try:
            while True:
                try:
                    chunk = await source.receive(_CHUNK)
                except anyio.EndOfStream:
                    break
                await sink.send(chunk)
            await sink.send_eof()
        except Exception as exc:  # any I/O error on either side ends the pair
            if not failed:
                failed = True
                logger.debug("bridged connection aborted: %r", exc)
                await _abort_pair(a, b)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, a, b)
            tg.start_soon(copy, b, a)
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            await _abort_pair(a, b)
        # Both copies have ended: nothing is reading any more, closing is safe.
        await anyio.aclose_forcefully(a)
        await anyio.aclose_forcefully(b)


class BridgeBase:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._tg: anyio.abc.TaskGroup | None = None
        self._pairs: set[tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]] = set()
        self._idle: anyio.Event | None = None

    @property
    def active_connections(self) -> int:
        """Spliced connections still running."""
        return len(self._pairs)

    async def _splice(self, a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
        pair = (a, b)
        self._pairs.add(pair)
        try:
            await splice(a, b)
        finally:
            self._pairs.discard(pair)
            if not self._pairs and self._idle is not None:
                self._idle.set()

    async def _start(self) -> anyio.abc.TaskGroup:
        if self._tg is not None:
            raise ClosedError("a yamux bridge can be entered only once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return tg

    async def _stop(self) -> None:
        assert self._tg is not None
        with anyio.CancelScope(shield=True):
            if self._pairs:
                # Interrupt the splices and let them end on their own: cancelling
                # their socket reads instead can race (see shutdown_socket).
                self._idle = anyio.Event()
                for a, b in list(self._pairs):
                    await _abort_pair(a, b)
                with anyio.move_on_after(5):
                    await self._idle.wait()
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
