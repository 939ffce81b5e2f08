"""How a failed call of a :class:`~.client.PluginClient` becomes a plugwire error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from plugwire.core.errors import ConnectionClosedError, PluginExitedError, PlugwireError
from plugwire.core.process import PluginProcess

from .._errors_map import rpc_error

__all__ = ["map_call_error"]


async def map_call_error(
    exc: grpc.aio.AioRpcError,
    method: str,
    *,
    peer: str,
    process: PluginProcess | None,
    gone_soon: Callable[[], Awaitable[bool]],
) -> PlugwireError:
    """:class:`PluginExitedError` when the connection broke because the plugin exited
    (``gone_soon`` tells), :class:`ConnectionClosedError` for another broken connection,
    else the mapped status (:func:`~plugwire.grpc._errors_map.rpc_error`)."""
    if (
        exc.code()
        in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.CANCELLED,
        )
        and await gone_soon()
    ):
        return PluginExitedError(
            "the plugin exited during the call",
            returncode=process.returncode if process is not None else None,
            stderr_tail=process.stderr_tail if process is not None else (),
            peer=peer,
            step=method,
        )
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        return ConnectionClosedError(
            "the connection to the plugin failed",
            peer=peer,
            step=method,
            seen=exc.details(),
        )
    return rpc_error(exc, peer=peer, step=method)
