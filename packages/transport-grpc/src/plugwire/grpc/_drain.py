"""Ending the tasks that read gRPC calls a close has just cancelled.

A task awaiting ``call.read()`` that is itself cancelled leaves the read pending in
gRPC core: its completion arrives later, through grpc.aio's poller, for the loop the
call was made on. When that loop has been closed meanwhile (a program or a test that
runs one event loop after another), grpc.aio's poller raises ``RuntimeError: Event
loop is closed`` into whichever loop is running then. Letting the task see its call's
cancellation instead consumes the completion on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["drain_tasks"]

#: how long tasks get to end by themselves once their calls are cancelled
DRAIN_TIMEOUT = 1.0


async def drain_tasks(tasks: Iterable[asyncio.Task[Any]], timeout: float = DRAIN_TIMEOUT) -> None:
    """Wait up to ``timeout`` for ``tasks`` to end (call after cancelling their calls,
    e.g. by closing the channel), then cancel and await what is left (``timeout=0``:
    cancel at once). Never raises the tasks' errors; a cancellation of the caller
    still cancels the tasks."""
    pending = {task for task in tasks if not task.done()}
    try:
        if pending and timeout > 0:
            _, pending = await asyncio.wait(pending, timeout=timeout)
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task
