"""What one dispensable go-plugin plugin is, on each side of the wire.

A :class:`GrpcPlugin` mirrors go-plugin's ``GRPCPlugin`` interface:
:meth:`~GrpcPlugin.grpc_server` registers services on the plugin's server,
:meth:`~GrpcPlugin.grpc_client` wraps the host's connection in a client object that
``dispense(name)`` returns. Implement only the side you use.

A plugin that also implements :meth:`~GrpcPlugin.ttrpc_server` (plugin side) and
:meth:`~GrpcPlugin.ttrpc_client` (host side), and says so in :attr:`~GrpcPlugin.wires`,
can be negotiated onto ttrpc between plugwire peers (see :mod:`.wires`).
:class:`ServicePlugin` built from a servicer object and its service descriptor does
all of that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from google.protobuf.descriptor import ServiceDescriptor

import grpc
from plugwire.core.errors import ConfigError

from .broker import GrpcBroker

if TYPE_CHECKING:
    from plugwire.ttrpc import Client as TtrpcClient
    from plugwire.ttrpc import Server as TtrpcServer

__all__ = ["GrpcPlugin", "ServicePlugin"]

T = TypeVar("T")


class GrpcPlugin:
    """Base class of plugins served or dispensed over gRPC (and, optionally, ttrpc)."""

    #: The wires this plugin can be served and dispensed on; a subclass that
    #: implements :meth:`ttrpc_server`/:meth:`ttrpc_client` adds ``"ttrpc"``.
    wires: tuple[str, ...] = ("grpc",)

    def ttrpc_server(self, broker: GrpcBroker, server: TtrpcServer) -> None:
        """Plugin side, ttrpc negotiated: register this plugin's services on ``server``
        (a :class:`plugwire.ttrpc.Server`)."""
        raise ConfigError(f"{type(self).__name__} cannot be served over ttrpc", step="serve")

    def ttrpc_client(self, broker: GrpcBroker, client: TtrpcClient) -> Any:
        """Host side, ttrpc negotiated: the object ``dispense`` returns, with the same
        call interface as :meth:`grpc_client`'s (``await stub.Method(request)``)."""
        raise ConfigError(f"{type(self).__name__} cannot be dispensed over ttrpc", step="dispense")

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

    gRPC only: ``register(server)`` adds the servicer (plugin side), e.g.
    ``lambda s: kv_pb2_grpc.add_KVServicer_to_server(KV(), s)``; ``stub(channel)`` makes
    the host's client, e.g. ``kv_pb2_grpc.KVStub``.

    Any wire: ``service`` (the ``ServiceDescriptor``, e.g.
    ``kv_pb2.DESCRIPTOR.services_by_name["KV"]``) with ``servicer`` (plugin side: a
    plain object following the grpc.aio convention, served on gRPC through
    :mod:`plugwire.grpc.binding` and on ttrpc unchanged) and/or, on the host side,
    nothing else (over ttrpc ``dispense`` returns a
    :class:`plugwire.ttrpc.ServiceClient`; over gRPC ``stub(channel)`` when given, else
    a descriptor-built stub). Portable servicers raise
    :class:`~plugwire.core.errors.RemoteError` (or ``context.abort(code, message)``
    with an integer code) instead of grpc-only context calls.
    """

    def __init__(
        self,
        *,
        register: Callable[[grpc.aio.Server], None] | None = None,
        stub: Callable[[grpc.aio.Channel], T] | None = None,
        servicer: object | None = None,
        service: ServiceDescriptor | None = None,
    ) -> None:
        if servicer is not None and service is None:
            raise ConfigError(
                "ServicePlugin(servicer=...) needs service=<ServiceDescriptor>",
                step="plugin",
                expected="service=my_pb2.DESCRIPTOR.services_by_name[...]",
            )
        self._register = register
        self._stub = stub
        self._servicer = servicer
        self._service = service
        if service is not None and (servicer is not None or register is None):
            self.wires = ("grpc", "ttrpc")

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        if self._register is not None:
            self._register(server)
            return
        if self._servicer is not None and self._service is not None:
            from ..binding import add_servicer

            add_servicer(server, self._servicer, self._service)
            return
        super().grpc_server(broker, server)

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> T:
        if self._stub is not None:
            return self._stub(channel)
        if self._service is not None:
            return DescriptorStub(channel, self._service)  # type: ignore[return-value]
        return super().grpc_client(broker, channel)  # type: ignore[no-any-return]

    def ttrpc_server(self, broker: GrpcBroker, server: TtrpcServer) -> None:
        if self._servicer is None or self._service is None:
            super().ttrpc_server(broker, server)
            return
        server.add_servicer(self._servicer, self._service)

    def ttrpc_client(self, broker: GrpcBroker, client: TtrpcClient) -> Any:
        if self._service is None:
            return super().ttrpc_client(broker, client)
        from plugwire.ttrpc import ServiceClient

        return ServiceClient(client, self._service)


class DescriptorStub:
    """A gRPC stub built from a ``ServiceDescriptor`` (no ``*_pb2_grpc`` module needed):
    ``await stub.Method(request)`` for unary calls, as a generated stub."""

    def __init__(self, channel: grpc.aio.Channel, service: ServiceDescriptor) -> None:
        from google.protobuf import message_factory

        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            req = message_factory.GetMessageClass(method.input_type)
            resp = message_factory.GetMessageClass(method.output_type)
            kind = (
                ("stream" if method.client_streaming else "unary")
                + "_"
                + ("stream" if method.server_streaming else "unary")
            )
            factory = getattr(channel, kind)
            setattr(
                self,
                method.name,
                factory(
                    path,
                    request_serializer=req.SerializeToString,
                    response_deserializer=resp.FromString,
                ),
            )
