"""The plugwire error hierarchy.

Every failure plugwire raises is a :class:`PlugwireError`. Protocol failures carry
context so that a log line alone says what went wrong: the *peer* (which plugin or
host), the *step* (handshake, announce, call ``/pkg.Svc/Method``...), what was
*expected* and what was *seen*.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ClosedError",
    "ConfigError",
    "ConnectionClosedError",
    "HandshakeError",
    "MagicCookieError",
    "MessageTooLargeError",
    "PluginExitedError",
    "PluginStartError",
    "PluginTimeoutError",
    "PlugwireError",
    "ProtocolError",
    "RemoteError",
    "TransportNotAvailableError",
    "VersionMismatchError",
]


def _short(value: object, limit: int = 400) -> str:
    """Shorten from the middle: the start and the end of a value say the most."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        half = (limit - 5) // 2
        text = f"{text[:half]} ... {text[-half:]}"
    return text


class PlugwireError(Exception):
    """Root of every error plugwire raises.

    ``str(err)`` renders the message followed by the context that was given, e.g.
    ``announce line malformed (peer='kv', step='announce', expected='6 or 7 |-separated
    fields', seen='hello')``.
    """

    def __init__(
        self,
        message: str,
        *,
        peer: str | None = None,
        step: str | None = None,
        expected: object = None,
        seen: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.peer = peer
        self.step = step
        self.expected = expected
        self.seen = seen

    def __str__(self) -> str:
        parts = []
        if self.peer is not None:
            parts.append(f"peer={self.peer!r}")
        if self.step is not None:
            parts.append(f"step={self.step!r}")
        if self.expected is not None:
            parts.append(f"expected={_short(self.expected)}")
        if self.seen is not None:
            parts.append(f"seen={_short(self.seen)!s}")
        if not parts:
            return self.message
        return f"{self.message} ({', '.join(parts)})"


class ConfigError(PlugwireError, ValueError):
    """A configuration value or definition given by the user is invalid."""


class HandshakeError(PlugwireError):
    """The two sides could not agree on how to talk."""


class MagicCookieError(HandshakeError):
    """The magic cookie is missing or wrong: the program was not launched by its host."""


class VersionMismatchError(HandshakeError):
    """No protocol version is supported by both sides."""

    def __init__(
        self,
        message: str,
        *,
        offered: Sequence[int],
        supported: Sequence[int],
        peer: str | None = None,
        step: str | None = "version negotiation",
    ) -> None:
        super().__init__(
            message,
            peer=peer,
            step=step,
            expected=f"one of {list(supported)}",
            seen=f"offered {list(offered)}",
        )
        self.offered = tuple(offered)
        self.supported = tuple(supported)


class ProtocolError(PlugwireError):
    """The peer sent bytes that do not follow the protocol."""


class MessageTooLargeError(ProtocolError):
    """A message is larger than the configured limit.

    ``code`` is RESOURCE_EXHAUSTED, the status a peer answers for it, so a caller can
    test ``err.code`` alike whether the sender or the receiver refused the message.
    """

    code: int = 8  # StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, size: int, limit: int, **context: str | None) -> None:
        super().__init__(message, expected=f"<= {limit} bytes", seen=f"{size} bytes", **context)
        self.size = size
        self.limit = limit


class PluginStartError(PlugwireError):
    """A plugin process could not be started or did not complete its start-up."""


class PluginTimeoutError(PlugwireError, TimeoutError):
    """A plugin did not answer within its deadline."""


class PluginExitedError(PlugwireError):
    """A plugin process exited while it was still needed.

    ``returncode`` is the exit status (negative: killed by that signal) and
    ``stderr_tail`` the last lines it wrote to stderr.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None,
        stderr_tail: Sequence[str] = (),
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        tail = list(stderr_tail)
        super().__init__(
            message,
            peer=peer,
            step=step,
            seen=f"exit status {returncode}"
            + (f"; last stderr lines: {' | '.join(tail[-5:])}" if tail else ""),
        )
        self.returncode = returncode
        self.stderr_tail = tuple(tail)


class ConnectionClosedError(PlugwireError):
    """The connection to the peer closed while calls were pending."""


class ClosedError(PlugwireError):
    """The object was used after it was closed."""


class RemoteError(PlugwireError):
    """The peer answered a call with an error status (a gRPC status code).

    ``code`` is the numeric gRPC status code, ``details`` the encoded
    ``google.rpc.Status.details`` when the transport carries them.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int,
        details: Sequence[bytes] = (),
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, peer=peer, step=step)
        self.code = code
        self.details = tuple(details)

    def __str__(self) -> str:
        return f"[{status_name(self.code)}] {super().__str__()}"


class TransportNotAvailableError(PlugwireError):
    """A transport was asked for that is not installed (its extra is missing)."""


def status_name(code: int) -> str:
    """The gRPC name of a status code (``5`` -> ``'NOT_FOUND'``)."""
    from .status import StatusCode

    try:
        return StatusCode(code).name
    except ValueError:
        return f"CODE_{code}"
