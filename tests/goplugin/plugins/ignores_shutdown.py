"""The KV plugin whose GRPCController.Shutdown answers but does not stop it (a plugin
that ignores the graceful step: hosts must fall back to SIGTERM, then SIGKILL)."""

import grpc

from plugwire.grpc._generated.plugin import grpc_controller_pb2
from plugwire.grpc.goplugin import ServeConfig, serve, server
from plugwire.grpc.goplugin.controller import ControllerServicer
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.grpc.goplugin.examples.kv import KVPlugin


class IgnoringController(ControllerServicer):
    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> grpc_controller_pb2.Empty:
        return grpc_controller_pb2.Empty()


server.ControllerServicer = IgnoringController  # type: ignore[misc]
serve(ServeConfig(handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()}))
