"""``grpc.health.v1.Health`` as go-plugin serves it: service ``plugin`` is SERVING."""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import grpc

__all__ = ["GRPC_SERVICE_NAME", "add_health", "check_health"]

#: The health service name go-plugin registers and pings.
GRPC_SERVICE_NAME = "plugin"


async def add_health(server: grpc.aio.Server) -> object:
    """Register a health servicer on ``server`` reporting ``plugin`` (and ``""``) SERVING."""
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    await servicer.set(GRPC_SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def check_health(channel: grpc.aio.Channel, *, timeout: float | None = None) -> int:
    """Call ``Health.Check(service="plugin")`` and return the status number (1 = SERVING).

    gRPC failures propagate as :class:`grpc.aio.AioRpcError`; callers map them.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(
        health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAME), timeout=timeout
    )
    return int(reply.status)
