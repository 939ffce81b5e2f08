"""What one dispensable go-plugin plugin is, on each side of the wire.

A :class:`GrpcPlugin` mirrors go-plugin's ``GRPCPlugin`` interface:
:meth:`~GrpcPlugin.grpc_server` registers services on the plugin's server,
:meth:`~GrpcPlugin.grpc_client` wraps the host's connection in a client object that
``dispense(name)`` returns. Implement only the side you use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc
from plugwire.core.errors import ConfigError

from .broker import GrpcBroker

__all__ = ["GrpcPlugin", "ServicePlugin"]

T = TypeVar("T")


class GrpcPlugin:
    """Base class of plugins served or dispensed over gRPC."""

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        """Plugin side: register this plugin's services on ``server``."""
        raise ConfigError(
            f"{type(self).__name__} cannot be served: it does not implement grpc_server",
            step="serve",
        )

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> Any:
        """Host side: the object ``dispense`` returns, usually a stub on ``channel``."""
        raise ConfigError(
            f"{type(self).__name__} cannot be dispensed: it does not implement grpc_client",
            step="dispense",
        )


class ServicePlugin(GrpcPlugin, Generic[T]):
    """A plugin made of one generated service: no subclass needed.

    ``register(server)`` adds the servicer (plugin side), e.g.
    ``lambda s: kv_pb2_grpc.add_KVServicer_to_server(KV(), s)``; ``stub(channel)`` makes
    the host's client, e.g. ``kv_pb2_grpc.KVStub``.
    """

    def __init__(
        self,
        *,
        register: Callable[[grpc.aio.Server], None] | None = None,
        stub: Callable[[grpc.aio.Channel], T] | None = None,
    ) -> None:
        self._register = register
        self._stub = stub

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        if self._register is None:
            super().grpc_server(broker, server)
            return
        self._register(server)

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> T:
        if self._stub is None:
            return super().grpc_client(broker, channel)  # type: ignore[no-any-return]
        return self._stub(channel)
