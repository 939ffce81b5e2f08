"""Errors specific to ttrpc (all are :class:`~plugwire.core.errors.PlugwireError`)."""

from __future__ import annotations

from plugwire.core.errors import MessageTooLargeError
from plugwire.core.rpc import RpcError
from plugwire.core.status import StatusCode

__all__ = ["DeadlineExceededError", "OversizedMessageError", "oversize_message"]


def oversize_message(size: int, limit: int) -> str:
    """The upstream wording, so logs read the same on both sides."""
    return f"message length {size} exceed maximum message size of {limit}"


class OversizedMessageError(MessageTooLargeError):
    """A message exceeds the ttrpc size limit (gRPC code RESOURCE_EXHAUSTED).

    Raised by the sender before anything is written, and by a receiver for the one
    stream whose message was discarded; the connection stays usable either way.
    """

    code = StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceededError(RpcError, TimeoutError):
    """A call's deadline passed (locally, or the server answered DEADLINE_EXCEEDED)."""

    def __init__(
        self,
        message: str = "context deadline exceeded",
        *,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, code=StatusCode.DEADLINE_EXCEEDED, peer=peer, step=step)
