"""The plugin side accepts on the broker and the host dials (the reverse direction).

``Counter.Get`` starts an AddHelper server on a fresh broker id (AcceptAndServe) and
answers that id; the host then dials it. Serves over $NETWORK (unix or tcp).
"""

import os

import grpc

from plugwire.grpc.goplugin import GrpcBroker, GrpcPlugin, ServeConfig, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, counter_pb2, counter_pb2_grpc
from plugwire.grpc.goplugin.examples.counter import AddHelperServicer


class Reverse(counter_pb2_grpc.CounterServicer):
    def __init__(self, broker: GrpcBroker) -> None:
        self._broker = broker

    async def Get(self, request, context):
        service_id = self._broker.next_id()
        self._broker.spawn_accept_and_serve(
            service_id,
            lambda s: counter_pb2_grpc.add_AddHelperServicer_to_server(AddHelperServicer(), s),
        )
        return counter_pb2.GetResponse(value=service_id)


class Plugin(GrpcPlugin):
    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        counter_pb2_grpc.add_CounterServicer_to_server(Reverse(broker), server)


serve(
    ServeConfig(
        handshake=HANDSHAKE,
        plugins={"counter": Plugin()},
        network=os.environ.get("NETWORK", "unix"),
    )
)
