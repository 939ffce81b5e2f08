"""``plugin.GRPCController``: the host asks the plugin to shut down."""

from __future__ import annotations

import asyncio

import grpc

from .._generated.plugin import grpc_controller_pb2, grpc_controller_pb2_grpc

__all__ = ["ControllerServicer", "shutdown"]


class ControllerServicer(grpc_controller_pb2_grpc.GRPCControllerServicer):
    """Answers ``Shutdown`` and then sets ``stop``; the serve loop stops the server."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def _stopped(self, _call: object) -> None:
        self._stop.set()

    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> grpc_controller_pb2.Empty:
        # Reply first: the plugin stops once this call is done (its reply sent), so the
        # server can then stop at once, as go-plugin's does (``grpc.Server.Stop``).
        context.add_done_callback(self._stopped)  # type: ignore[arg-type]  # grpc-stubs: a class
        return grpc_controller_pb2.Empty()


async def shutdown(channel: grpc.aio.Channel, *, timeout: float | None = 2.0) -> None:
    """Call ``GRPCController.Shutdown`` on a plugin (errors propagate as gRPC errors)."""
    stub = grpc_controller_pb2_grpc.GRPCControllerStub(channel)
    await stub.Shutdown(grpc_controller_pb2.Empty(), timeout=timeout)
