"""Peers of ``plugwire bench goplugin`` (run as child processes; not a public API).

``python -m plugwire.grpc.goplugin._bench_peer plugin``: the in-memory KV plugin
(examples/grpc contract) served by plugwire; ``... bare SOCKET``: the same servicer on a
bare grpc.aio server (prints ``ready``); ``... anywire``: the same servicer as a plain
servicer with its service descriptor, so a plugwire host can negotiate ttrpc.
python-plugin's peers are in :mod:`plugwire.grpc._bench_pyplugin`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import grpc
from plugwire.grpc.goplugin import ServicePlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc


class MemoryKV(kv_pb2_grpc.KVServicer):
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def Get(self, request: Any, context: Any) -> Any:
        return kv_pb2.GetResponse(value=self.data.get(request.key, b""))

    async def Put(self, request: Any, context: Any) -> Any:
        self.data[request.key] = request.value
        return kv_pb2.Empty()


async def _bare(path: str) -> None:
    server = grpc.aio.server()
    kv_pb2_grpc.add_KVServicer_to_server(MemoryKV(), server)
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def main(argv: list[str]) -> None:
    if argv[:1] == ["bare"]:
        asyncio.run(_bare(argv[1]))
    elif argv[:1] == ["anywire"]:
        impl = MemoryKV()
        serve(
            handshake=HANDSHAKE,
            plugins={
                "kv_grpc": ServicePlugin(
                    servicer=impl, service=kv_pb2.DESCRIPTOR.services_by_name["KV"]
                )
            },
            log_level=logging.WARNING,
        )
    else:
        impl = MemoryKV()
        serve(
            handshake=HANDSHAKE,
            plugins={
                "kv_grpc": ServicePlugin(
                    register=lambda s: kv_pb2_grpc.add_KVServicer_to_server(impl, s)
                )
            },
            log_level=logging.WARNING,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
