"""The KV plugin: ``proto.KV`` (Get/Put) served the go-plugin way.

Values live in files ``kv_<key>`` in ``$KV_DIR`` (default: the working directory),
like the upstream example's plugins: its host starts a new plugin process per
command. Each Put prints a line (the host sees it through go-plugin's stdio
forwarding) and logs one (hclog JSON on stderr, which go-plugin hosts parse).

Started by hand it explains that it is a plugin and exits 1: only a host that sets
the magic cookie can launch it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio
import grpc
from plugwire.grpc.goplugin import ServicePlugin, serve

from .contract import HANDSHAKE, PLUGIN_KEY, kv_pb2, kv_pb2_grpc

log = logging.getLogger("kv")


class KV(kv_pb2_grpc.KVServicer):
    """``proto.KV`` backed by files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def _path(self, key: str, context: grpc.aio.ServicerContext) -> anyio.Path:
        if not key or "/" in key or key.startswith("."):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad key {key!r}")
        return anyio.Path(self.directory / f"kv_{key}")

    async def Get(
        self, request: kv_pb2.GetRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.GetResponse:
        path = await self._path(request.key, context)
        if not await path.is_file():
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no value for {request.key!r}")
        return kv_pb2.GetResponse(value=await path.read_bytes())

    async def Put(
        self, request: kv_pb2.PutRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.Empty:
        path = await self._path(request.key, context)
        await path.write_bytes(request.value)
        log.info("stored", extra={"key": request.key, "bytes": len(request.value)})
        print(f"stored {request.key}", flush=True)
        return kv_pb2.Empty()


def main() -> None:
    """Serve the plugin to the host that launched this process (exits the process)."""
    kv = KV(Path(os.environ.get("KV_DIR") or "."))

    def register(server: grpc.aio.Server) -> None:
        kv_pb2_grpc.add_KVServicer_to_server(kv, server)

    serve(handshake=HANDSHAKE, plugins={PLUGIN_KEY: ServicePlugin(register=register)})
