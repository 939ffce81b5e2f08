"""Errors specific to the HTTP transport."""

from __future__ import annotations

from plugwire.core.errors import PlugwireError

__all__ = ["HttpStatusError"]


class HttpStatusError(PlugwireError):
    """A peer answered with an HTTP status the caller did not accept.

    ``status`` is the HTTP status code and ``body`` the raw response body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: bytes = b"",
        peer: str | None = None,
        step: str | None = None,
        expected: object = None,
    ) -> None:
        super().__init__(
            message,
            peer=peer,
            step=step,
            expected=expected,
            seen=f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}",
        )
        self.status = status
        self.body = body
