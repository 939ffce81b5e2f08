""":class:`GrpcTransport`: plugwire's byte-level transport interface over grpc.aio.

Handlers are keyed by full method name (``/pkg.Service/Method``) and move raw
bytes, so any protobuf service can be served or called without generated code.
asyncio only: under trio both methods raise
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import grpc
from plugwire.core.errors import ConfigError, ConnectionClosedError, RemoteError
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address, Channel, Transport, UnaryHandler

from ._backend import require_asyncio
from ._errors_map import rpc_error
from ._listen import CHANNEL_OPTIONS, SERVER_OPTIONS, channel_target, remove_socket

__all__ = ["GrpcChannel", "GrpcTransport"]


def _identity(data: bytes) -> bytes:
    return data


class _BytesHandlers(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self, handlers: Mapping[str, UnaryHandler]) -> None:
        self._handlers = {name: self._wrap(h) for name, h in handlers.items()}

    @staticmethod
    def _wrap(handler: UnaryHandler) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def call(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            try:
                return await handler(request, metadata)
            except RemoteError as exc:
                await context.abort(grpc.StatusCode(_grpc_status(exc.code)), exc.message)
                raise  # pragma: no cover  (abort raises)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=_identity,
            response_serializer=_identity,
        )

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        return self._handlers.get(handler_call_details.method)


def _grpc_status(code: int) -> tuple[int, str]:
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.value  # type: ignore[no-any-return]
    return grpc.StatusCode.UNKNOWN.value  # type: ignore[no-any-return]


class GrpcChannel(Channel):
    """A :class:`~plugwire.core.transport.Channel` on a grpc.aio channel."""

    def __init__(self, channel: grpc.aio.Channel, peer: str) -> None:
        self._channel = channel
        self._peer = peer
        self._closed = False

    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        if self._closed:
            raise ConnectionClosedError("channel is closed", peer=self._peer, step=method)
        call = self._channel.unary_unary(
            method, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            reply = await call(
                payload, timeout=timeout, metadata=tuple((metadata or {}).items()) or None
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise ConnectionClosedError(
                    "connection failed", peer=self._peer, step=method, seen=exc.details()
                ) from exc
            raise rpc_error(exc, peer=self._peer, step=method) from exc
        return reply  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._channel.close(0)


class GrpcTransport(Transport):
    """gRPC (HTTP/2) over a unix socket or TCP, via grpc.aio (asyncio only)."""

    name = "grpc"
    backends: ClassVar[frozenset[str]] = frozenset({"asyncio"})

    @contextlib.asynccontextmanager
    async def _serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> AsyncIterator[Address]:
        require_asyncio("plugwire.grpc.GrpcTransport")
        if address.network not in ("unix", "tcp"):
            raise ConfigError("grpc serves on unix or tcp", step="serve", seen=str(address))
        server = grpc.aio.server(options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((_BytesHandlers(handlers),))
        target = channel_target(address)
        try:
            port = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise ConfigError("cannot listen", step="serve", seen=f"{address}: {exc}") from None
        bound = address
        if address.network == "tcp":
            host = address.address.rpartition(":")[0]
            bound = Address("tcp", f"{host}:{port}")
        await server.start()
        try:
            yield bound
        finally:
            await server.stop(0.5)
            remove_socket(bound)

    def serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    async def connect(self, address: Address) -> Channel:
        require_asyncio("plugwire.grpc.GrpcTransport")
        if address.network not in ("unix", "tcp"):
            raise ConfigError("grpc connects over unix or tcp", step="connect", seen=str(address))
        channel = grpc.aio.insecure_channel(channel_target(address), options=CHANNEL_OPTIONS)
        return GrpcChannel(channel, str(address))


_ = StatusCode  # status numbers are gRPC's own
