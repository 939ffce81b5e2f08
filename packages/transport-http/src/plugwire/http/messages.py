"""HTTP requests and responses as small immutable values."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from plugwire.core.errors import ProtocolError

__all__ = ["Headers", "Request", "Response", "decode_json"]

#: Header fields as ``(lower-case name, value)`` pairs, in wire order.
Headers = tuple[tuple[str, str], ...]


def _headers(value: object) -> Headers:
    items = value.items() if isinstance(value, dict) else value
    return tuple((str(k).lower(), str(v)) for k, v in items)  # type: ignore[attr-defined]


def _get(headers: Headers, name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key == name:
            return value
    return None


def decode_json(body: bytes, *, peer: str | None = None, step: str | None = None) -> Any:
    """Parse ``body`` as JSON; raise :class:`ProtocolError` saying where it broke."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(
            f"body is not valid JSON: {exc}", peer=peer, step=step, expected="JSON", seen=body
        ) from None


@attrs.frozen
class Request:
    """One HTTP request as the server received it (the body read in full)."""

    method: str
    target: str
    headers: Headers = attrs.field(default=(), converter=_headers)
    body: bytes = b""
    #: Called (no arguments) when the client closes its connection while this request
    #: is being answered, before the handler is cancelled; only on a server made with
    #: ``watch_disconnect=True``. Not part of equality.
    on_disconnect: list[Callable[[], None]] = attrs.field(factory=list, eq=False, repr=False)

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return _get(self.headers, name)

    @property
    def content_type(self) -> str:
        return self.header("content-type") or ""

    def json(self) -> Any:
        """The body parsed as JSON; :class:`ProtocolError` when it is not JSON."""
        return decode_json(self.body, step=f"{self.method} {self.path}")


@attrs.frozen
class Response:
    """One HTTP response: status, headers and the whole body."""

    status: int
    body: bytes = b""
    headers: Headers = attrs.field(default=(), converter=_headers)
    #: Awaited by the server once the response has been written (used e.g. to
    #: shut down after answering a stop request). Not part of equality.
    then: Callable[[], Awaitable[None]] | None = attrs.field(default=None, eq=False, repr=False)
    #: A streamed body: awaited with a ``write(chunk)`` function once the head is sent
    #: (chunked transfer encoding; ``body`` is ignored). Not part of equality.
    stream: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    @classmethod
    def json(cls, obj: Any, status: int = 200, *, newline: bool = True) -> Response:
        """A JSON response (``application/json``); ``newline`` ends the body with
        ``\\n`` as Go's ``json.Encoder`` does."""
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        if newline:
            body += b"\n"
        return cls(status, body, (("content-type", "application/json"),))

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), (("content-type", "text/plain; charset=utf-8"),))

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def decode_json(self, *, peer: str | None = None, step: str | None = None) -> Any:
        """The body parsed as JSON; :class:`ProtocolError` when it is not JSON."""
        return decode_json(self.body, peer=peer, step=step)
