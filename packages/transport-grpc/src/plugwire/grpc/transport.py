""":class:`GrpcTransport`: the ``grpc`` entry of ``plugwire.transports``, on grpc.aio.

RPC: ``serve(address, [servicer, ...])`` serves servicers through
:mod:`plugwire.grpc.binding` (every method kind, metadata both ways, deadlines,
cancellation); ``await stub(address_or_channel, service_descriptor)`` gives a
:class:`plugwire.core.rpc.Stub` whose failures are :class:`~plugwire.core.rpc.RpcError`
(details decoded from ``grpc-status-details-bin``; UNAVAILABLE from grpc's runtime is
:class:`~plugwire.core.rpc.RpcUnavailableError`, also a ConnectionClosedError).
Byte level: handlers keyed by full method name (``/pkg.Service/Method``) move raw
bytes, so any protobuf service can be served or called without generated code.
asyncio only: under trio everything raises
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import anyio

import grpc
from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    PlugwireError,
    ProtocolError,
    RemoteError,
)
from plugwire.core.rpc import (
    Metadata,
    RpcError,
    RpcMethod,
    RpcUnavailableError,
    Service,
    decode_status,
)
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address, Channel, Transport, UnaryHandler

from ._backend import require_asyncio
from ._errors_map import rpc_error
from ._listen import CHANNEL_OPTIONS, SERVER_OPTIONS, channel_target, remove_socket
from .binding import add_servicer

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


def _split_metadata(
    pairs: Any,
) -> tuple[Metadata, tuple[bytes, ...]]:
    """String metadata, and the details of a ``grpc-status-details-bin`` entry."""
    out: list[tuple[str, str]] = []
    details: tuple[bytes, ...] = ()
    for key, value in pairs or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            try:
                details = decode_status(value)[2]
            except ProtocolError:
                details = ()
        elif isinstance(value, str):
            out.append((key, value))
    return tuple(out), details


def _map_error(exc: grpc.aio.AioRpcError, peer: str, step: str) -> RpcError:
    code = exc.code()
    number = code.value[0] if isinstance(code.value, tuple) else int(code.value)
    trailing, details = _split_metadata(exc.trailing_metadata())
    initial, _ = _split_metadata(exc.initial_metadata())
    cls = RpcUnavailableError if code == grpc.StatusCode.UNAVAILABLE else RpcError
    return cls(
        exc.details() or code.name,
        code=number,
        details=details,
        trailing_metadata=trailing,
        initial_metadata=initial,
        peer=peer,
        step=step,
    )


async def _guarded(awaitable: Any, call: Any) -> Any:
    """Await a grpc.aio call step so that cancelling the awaiting task (anyio cancel
    scopes included) cancels the RPC and surfaces as an ordinary cancellation:
    grpc.aio's own awaitables re-raise a CancelledError anyio cannot attribute."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait((task,))
    except asyncio.CancelledError:
        task.cancel()
        call.cancel()
        raise
    return task.result()


class _GrpcStream:
    """A call of any kind as a grpc.aio stream-stream call (the same on the wire)."""

    def __init__(self, call: Any, peer: str, step: str) -> None:
        self._call = call
        self.peer = peer
        self.step = step
        self.initial_metadata: Metadata = ()
        self.trailing_metadata: Metadata = ()
        self._got_initial = False

    async def _initial(self) -> None:
        if not self._got_initial:
            self._got_initial = True
            md = await _guarded(self._call.initial_metadata(), self._call)
            self.initial_metadata = _split_metadata(md)[0]

    async def send(self, data: bytes) -> None:
        try:
            await _guarded(self._call.write(data), self._call)
        except grpc.aio.AioRpcError as exc:
            raise _map_error(exc, self.peer, self.step) from exc
        except asyncio.InvalidStateError:
            raise ClosedError("request stream is closed", peer=self.peer, step=self.step) from None

    async def close_send(self) -> None:
        try:
            await _guarded(self._call.done_writing(), self._call)
        except grpc.aio.AioRpcError as exc:
            raise _map_error(exc, self.peer, self.step) from exc
        except asyncio.InvalidStateError:
            pass

    async def recv(self) -> bytes | None:
        try:
            item = await _guarded(self._call.read(), self._call)
            await self._initial()
        except grpc.aio.AioRpcError as exc:
            raise _map_error(exc, self.peer, self.step) from exc
        if item is grpc.aio.EOF:  # type: ignore[attr-defined]
            md = await _guarded(self._call.trailing_metadata(), self._call)
            self.trailing_metadata = _split_metadata(md)[0]
            return None
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        self._call.cancel()


async def _result(call: Any) -> Any:
    return await call


class _GrpcInvoker:
    def __init__(self, channel: grpc.aio.Channel, peer: str, *, owns: bool) -> None:
        self._channel = channel
        self.peer = peer
        self._owns = owns

    async def open(
        self, method: RpcMethod, *, timeout: float | None, metadata: Metadata
    ) -> _GrpcStream:
        call = self._channel.stream_stream(
            method.full_name, request_serializer=_identity, response_deserializer=_identity
        )(timeout=timeout, metadata=metadata or None)  # type: ignore[call-arg]
        return _GrpcStream(call, self.peer, method.full_name)

    async def unary(
        self, method: RpcMethod, request: bytes, *, timeout: float | None, metadata: Metadata
    ) -> tuple[bytes, Metadata, Metadata]:
        call = self._channel.unary_unary(
            method.full_name, request_serializer=_identity, response_deserializer=_identity
        )(request, timeout=timeout, metadata=metadata or None)
        try:
            reply = await _guarded(_result(call), call)
            initial = _split_metadata(await call.initial_metadata())[0]
            trailing = _split_metadata(await call.trailing_metadata())[0]
        except grpc.aio.AioRpcError as exc:
            raise _map_error(exc, self.peer, method.full_name) from exc
        return reply, initial, trailing

    async def aclose(self) -> None:
        if self._owns:
            await self._channel.close(0)


class GrpcTransport(Transport):
    """gRPC (HTTP/2) over a unix socket or TCP, via grpc.aio (asyncio only)."""

    name = "grpc"
    backends: ClassVar[frozenset[str]] = frozenset({"asyncio"})

    @contextlib.asynccontextmanager
    async def _serve(
        self,
        address: Address,
        handlers: Mapping[str, UnaryHandler],
        services: Sequence[Service] = (),
        max_message_size: int | None = None,
    ) -> AsyncIterator[Address]:
        require_asyncio("plugwire.grpc.GrpcTransport")
        if address.network not in ("unix", "tcp"):
            raise ConfigError("grpc serves on unix or tcp", step="serve", seen=str(address))
        options = list(SERVER_OPTIONS)
        if max_message_size is not None:
            options = [o for o in options if "message_length" not in o[0]] + [
                ("grpc.max_receive_message_length", max_message_size),
                ("grpc.max_send_message_length", max_message_size),
            ]
        server = grpc.aio.server(options=options)
        if handlers:
            server.add_generic_rpc_handlers((_BytesHandlers(handlers),))
        for svc in services:
            add_servicer(server, svc.servicer, svc.spec.descriptor)
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
            # shielded: a cancelled serve block must still stop the server (and so
            # fail its calls in flight) rather than leave it running
            with anyio.CancelScope(shield=True):
                await server.stop(0.5 if handlers else 0)
            remove_socket(bound)

    def serve_bytes(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    def serve_rpc(
        self, address: Address, services: Sequence[Service], *, max_message_size: int | None
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, {}, services, max_message_size)

    async def invoker(self, target: Channel | Address) -> _GrpcInvoker:
        require_asyncio("plugwire.grpc.GrpcTransport")
        if isinstance(target, GrpcChannel):
            return _GrpcInvoker(target._channel, target._peer, owns=False)
        if not isinstance(target, Address):
            raise ConfigError("not a grpc channel", step="stub", seen=type(target).__name__)
        if target.network not in ("unix", "tcp"):
            raise ConfigError("grpc connects over unix or tcp", step="stub", seen=str(target))
        channel = grpc.aio.insecure_channel(channel_target(target), options=CHANNEL_OPTIONS)
        return _GrpcInvoker(channel, str(target), owns=True)

    async def connect(self, address: Address) -> Channel:
        require_asyncio("plugwire.grpc.GrpcTransport")
        if address.network not in ("unix", "tcp"):
            raise ConfigError("grpc connects over unix or tcp", step="connect", seen=str(address))
        channel = grpc.aio.insecure_channel(channel_target(address), options=CHANNEL_OPTIONS)
        return GrpcChannel(channel, str(address))


_ = StatusCode, PlugwireError, RemoteError  # status numbers are gRPC's own
