"""A go-plugin KV plugin whose one servicer runs on whichever wire the host negotiates.

Under a plugwire host it is served over ttrpc (the host offered it in
``PLUGWIRE_WIRES``); under a Go host (or ``wires=("grpc",)``) over plain go-plugin
gRPC. The servicer is a plain object: no ``*_pb2_grpc`` base class, no grpc-only
context calls (a missing key raises :class:`~plugwire.core.errors.RemoteError`).
"""

from __future__ import annotations

from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.grpc.goplugin import ServicePlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2

SERVICE = kv_pb2.DESCRIPTOR.services_by_name["KV"]


class KV:
    """``proto.KV`` in memory; Put also prints a line (mirrored to the host's stdout)."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    async def Get(self, request: kv_pb2.GetRequest, context: object) -> kv_pb2.GetResponse:
        try:
            return kv_pb2.GetResponse(value=self._values[request.key])
        except KeyError:
            raise RemoteError(f"no value for {request.key!r}", code=StatusCode.NOT_FOUND) from None

    async def Put(self, request: kv_pb2.PutRequest, context: object) -> kv_pb2.Empty:
        self._values[request.key] = request.value
        print(f"plugin stdout: put {request.key}", flush=True)
        return kv_pb2.Empty()


def main() -> None:
    serve(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": ServicePlugin(servicer=KV(), service=SERVICE)},
        configure_logging=False,
    )


if __name__ == "__main__":
    main()
