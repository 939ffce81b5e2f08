"""Quiet UNIMPLEMENTED answers for the RPCs a provider does not define."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import grpc


def unimplemented(service: str, method: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """A handler answering UNIMPLEMENTED through ``context.abort``.

    grpcio logs an ERROR traceback for any exception a servicer raises (the
    generated base classes raise NotImplementedError); ``abort`` ends the call with
    the status and nothing is logged.
    """

    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"/{service}/{method} is not implemented by this provider",
        )

    return handler
