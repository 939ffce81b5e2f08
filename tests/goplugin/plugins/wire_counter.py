"""The bidirectional counter, servable on either wire: ``Put`` dials the host's
AddHelper through the broker (a gRPC connection, whatever the main wire)."""

import os
from pathlib import Path
from typing import Any

from plugwire.grpc.goplugin import GrpcPlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, counter_pb2
from plugwire.grpc.goplugin.examples.counter import CounterServicer

COUNTER = counter_pb2.DESCRIPTOR.services_by_name["Counter"]


class WireCounter(GrpcPlugin):
    wires = ("grpc", "ttrpc")

    def _servicer(self, broker: Any) -> CounterServicer:
        return CounterServicer(broker, Path(os.environ.get("KV_DIR") or "."))

    def grpc_server(self, broker: Any, server: Any) -> None:
        from plugwire.grpc.binding import add_servicer

        add_servicer(server, self._servicer(broker), COUNTER)

    def ttrpc_server(self, broker: Any, server: Any) -> None:
        server.add_servicer(self._servicer(broker), COUNTER)


if __name__ == "__main__":
    serve(handshake=HANDSHAKE, plugins={"counter": WireCounter()}, configure_logging=False)
