"""Call bookkeeping of the ttrpc client: the receive side of one call or stream.

A :class:`Call` queues what the connection reader dispatched to its stream id and
parks the task waiting for it (see :mod:`plugwire.ttrpc.client` for who reads).
:class:`CallOwner` is what a :class:`~plugwire.ttrpc.client.ClientStream` needs from
the client that started its call, so that streams do not import the client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode

from .errors import DeadlineExceededError

__all__ = ["Call", "CallOwner", "new_event", "remote_error", "running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | Literal[False]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return False


class _Event(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> Any: ...


def new_event() -> _Event:
    """An event for the non-asyncio backend (trio's own: anyio's wrapper costs more)."""
    import trio

    return trio.Event()


class Call:
    """Receive side of one stream: a queue of (type, flags, data) or an error."""

    __slots__ = ("buffered", "done", "error", "event", "future", "items", "sid")

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.items: deque[tuple[int, int, bytes]] = deque()
        self.buffered = 0  # payload bytes in items
        self.error: BaseException | None = None
        # A waiting caller parks on an asyncio future (asyncio) or an anyio Event.
        self.future: asyncio.Future[None] | None = None
        self.event: _Event | None = None
        self.done = False

    @property
    def parked(self) -> bool:
        return self.future is not None or self.event is not None

    def wake(self) -> None:
        f = self.future
        if f is not None:
            if not f.done():
                f.set_result(None)
        elif self.event is not None:
            self.event.set()


class CallOwner(Protocol):
    """The client side a stream drives: waiting for its call, sending on it."""

    peer: str
    _calls: dict[int, Call]

    async def _wait(self, call: Call) -> None: ...

    async def _send(self, sid: int, flags: int, data: bytes, step: str) -> None: ...


def remote_error(
    status_code: int, message: str, details: Sequence[bytes], peer: str, step: str
) -> RemoteError:
    if status_code == StatusCode.DEADLINE_EXCEEDED:
        err: RemoteError = DeadlineExceededError(message, peer=peer, step=step)
        err.details = tuple(details)
        return err
    return RemoteError(message, code=status_code, details=details, peer=peer, step=step)
