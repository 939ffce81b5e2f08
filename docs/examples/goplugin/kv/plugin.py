"""A go-plugin KV plugin in Python (go-plugin's examples/grpc contract).

go-plugin's own, unmodified example host runs it; from a checkout (needs Go)::

    bash docs/examples/goplugin/run_go_host.sh     # put hello world, get hello -> world

which builds go-plugin's examples/grpc host into ~/.cache/plugwire and runs it with
``KV_PROTO=grpc KV_PLUGIN="python /abs/path/docs/examples/goplugin/kv/plugin.py"``.

Like the upstream plugins it keeps each value in a file ``kv_<key>`` in the working
directory: the example host starts a new plugin process for every command.
"""

from __future__ import annotations

import logging

import anyio
import grpc

from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import ServicePlugin, serve
from plugwire.grpc.goplugin.examples import kv_pb2, kv_pb2_grpc

log = logging.getLogger("kv")


class KV(kv_pb2_grpc.KVServicer):
    async def Get(self, request, context):  # type: ignore[no-untyped-def]
        path = anyio.Path(f"kv_{request.key}")
        if not await path.is_file():
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no value for {request.key!r}")
        return kv_pb2.GetResponse(value=await path.read_bytes())

    async def Put(self, request, context):  # type: ignore[no-untyped-def]
        await anyio.Path(f"kv_{request.key}").write_bytes(request.value)
        # Logging reaches the host as hclog JSON (level and fields kept) ...
        log.info("stored", extra={"key": request.key, "bytes": len(request.value)})
        # ... and what the plugin prints reaches the host's SyncStdout.
        print(f"stored {request.key}")
        return kv_pb2.Empty()


if __name__ == "__main__":
    serve(
        # The cookie and version go-plugin's examples/grpc host uses.
        handshake=Handshake("BASIC_PLUGIN", "hello", protocol_versions=(1,)),
        plugins={
            "kv_grpc": ServicePlugin(
                register=lambda s: kv_pb2_grpc.add_KVServicer_to_server(KV(), s)
            )
        },
    )
