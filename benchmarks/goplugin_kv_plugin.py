"""In-memory KV plugin for benchmarks/goplugin_bench.py (the examples/grpc contract).

``python goplugin_kv_plugin.py`` serves it as a go-plugin plugin through plugwire;
``python goplugin_kv_plugin.py --bare /path/sock`` serves the same servicer on a bare
grpc.aio server (the baseline) and prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from plugwire.grpc.goplugin import ServicePlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc


class MemoryKV(kv_pb2_grpc.KVServicer):
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def Get(self, request, context):  # type: ignore[no-untyped-def]
        return kv_pb2.GetResponse(value=self.data.get(request.key, b""))

    async def Put(self, request, context):  # type: ignore[no-untyped-def]
        self.data[request.key] = request.value
        return kv_pb2.Empty()


async def bare(path: str) -> None:
    server = grpc.aio.server()
    kv_pb2_grpc.add_KVServicer_to_server(MemoryKV(), server)
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bare":
        asyncio.run(bare(sys.argv[2]))
    else:
        impl = MemoryKV()
        serve(
            handshake=HANDSHAKE,
            plugins={
                "kv_grpc": ServicePlugin(
                    register=lambda s: kv_pb2_grpc.add_KVServicer_to_server(impl, s)
                )
            },
            log_level=30,
        )
