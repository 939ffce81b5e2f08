"""Launching plugins from a host whose gRPC is busy never crashes the children.

grpc's atfork handlers can kill a child forked while other threads are inside gRPC
(grpc/grpc#43055); plugwire.core spawns without running Python in the child.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from plugwire.core import PluginProcess


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_spawning_plugins_while_grpc_is_busy() -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            await stub.Check(health_pb2.HealthCheckRequest())

    tasks = [asyncio.ensure_future(load()) for _ in range(8)]
    failures = []
    try:
        for i in range(100):
            async with PluginProcess([sys.executable, "-c", "pass"], env={}, name=f"p{i}") as p:
                if await p.wait() != 0:
                    failures.append((p.returncode, p.stderr_tail))
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await channel.close()
        await server.stop(None)
    assert failures == []
