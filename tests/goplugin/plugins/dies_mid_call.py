"""A KV plugin whose Put of key "crash" kills the process (exit 3) mid-call."""

import os

import grpc

from plugwire.grpc.goplugin import GrpcBroker, GrpcPlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc


class Crashing(kv_pb2_grpc.KVServicer):
    async def Put(self, request, context):
        if request.key == "crash":
            os._exit(3)
        return kv_pb2.Empty()

    async def Get(self, request, context):
        return kv_pb2.GetResponse(value=b"fine")


class Plugin(GrpcPlugin):
    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        kv_pb2_grpc.add_KVServicer_to_server(Crashing(), server)


serve(handshake=HANDSHAKE, plugins={"kv_grpc": Plugin()})
