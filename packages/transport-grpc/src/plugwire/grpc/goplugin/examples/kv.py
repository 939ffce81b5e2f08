"""go-plugin's ``examples/grpc`` KV plugin, in Python.

Values live in files ``kv_<key>`` in ``$KV_DIR`` (default: the working directory)
because go-plugin's example host runs one plugin process per command. Each Put
also prints one line to stdout and stderr (mirrored to the host through
GRPCStdio) and logs at INFO (hclog JSON on the real stderr).

Run through go-plugin's own host::

    KV_PROTO=grpc KV_PLUGIN="python -m plugwire.grpc.goplugin.examples.kv" \
        ./grpc-example put hello world
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import grpc

from ..broker import GrpcBroker
from ..plugin import GrpcPlugin
from ..server import serve
from . import HANDSHAKE, kv_pb2, kv_pb2_grpc

__all__ = ["KVPlugin", "KVServicer", "main"]

log = logging.getLogger("kv")


class KVServicer(kv_pb2_grpc.KVServicer):
    """``proto.KV`` backed by files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _path(self, key: str) -> Path:
        return self._dir / f"kv_{key}"

    async def Get(
        self, request: kv_pb2.GetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> kv_pb2.GetResponse:
        try:
            value = self._path(request.key).read_bytes()
        except FileNotFoundError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no value for key {request.key!r}")
        log.debug("get", extra={"key": request.key})
        return kv_pb2.GetResponse(value=value)

    async def Put(
        self, request: kv_pb2.PutRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> kv_pb2.Empty:
        if "/" in request.key or not request.key:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "key must be a non-empty file name"
            )
        self._path(request.key).write_bytes(request.value)
        print(f"kv stdout: put {request.key}", flush=True)
        print(f"kv stderr: put {request.key}", file=sys.stderr, flush=True)
        log.info("put", extra={"key": request.key, "size": len(request.value)})
        return kv_pb2.Empty()


class KVPlugin(GrpcPlugin):
    """The ``kv_grpc`` plugin: serves :class:`KVServicer`, dispenses a ``KVStub``."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory or Path(os.environ.get("KV_DIR") or ".")

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        kv_pb2_grpc.add_KVServicer_to_server(KVServicer(self._dir), server)

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> kv_pb2_grpc.KVStub:
        return kv_pb2_grpc.KVStub(channel)


def main() -> None:
    """Serve ``kv_grpc`` (exits the process)."""
    serve(handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()})


if __name__ == "__main__":
    main()
