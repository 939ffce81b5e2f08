"""Errors raised by yamux sessions and streams.

They are :class:`~plugwire.core.errors.PlugwireError` subclasses and, where anyio has
a matching stream error, also subclasses of it, so generic anyio stream code that
catches :class:`anyio.BrokenResourceError` or :class:`anyio.ClosedResourceError`
keeps working. Malformed frames raise the core
:class:`~plugwire.core.errors.ProtocolError` (they also close the session).
"""

from __future__ import annotations

import anyio

from plugwire.core.errors import ClosedError, ConnectionClosedError, PlugwireError

from ._frame import GoAwayCode

__all__ = [
    "RemoteGoAwayError",
    "SessionClosedError",
    "StreamClosedError",
    "StreamResetError",
    "StreamsExhaustedError",
    "YamuxTimeoutError",
]


class SessionClosedError(ConnectionClosedError, anyio.BrokenResourceError):
    """The session is closed: locally, by the peer, or because of an error.

    ``cause`` is the error that ended the session (``None`` for a local close); it
    is also chained as ``__cause__`` when raised.
    """

    def __init__(
        self,
        message: str,
        *,
        cause: BaseException | None = None,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, peer=peer, step=step, seen=None if cause is None else str(cause))
        self.cause = cause


class StreamResetError(ConnectionClosedError, anyio.BrokenResourceError):
    """The stream was reset (RST): by the peer (``by_peer``) or locally."""

    def __init__(
        self, message: str, *, stream_id: int, by_peer: bool, peer: str | None = None
    ) -> None:
        super().__init__(message, peer=peer, step=f"yamux stream {stream_id}")
        self.stream_id = stream_id
        self.by_peer = by_peer


class StreamClosedError(ClosedError, anyio.ClosedResourceError):
    """The stream was used after this side closed it (``aclose`` or, for writes,
    ``send_eof``)."""


class RemoteGoAwayError(ConnectionClosedError):
    """The peer sent GoAway: with ``code`` NORMAL it accepts no new streams; any other
    code ends the session."""

    def __init__(self, message: str, *, code: int, peer: str | None = None) -> None:
        try:
            name = GoAwayCode(code).name
        except ValueError:
            name = f"unknown code {code}"
        super().__init__(message, peer=peer, step="yamux go away", seen=name)
        self.code = code


class YamuxTimeoutError(PlugwireError, TimeoutError):
    """A ping, keepalive, stream open or connection write did not finish in time."""


class StreamsExhaustedError(PlugwireError):
    """Every stream id of this side's parity has been used."""
