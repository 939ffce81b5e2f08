"""``TtrpcTransport``: ttrpc on the core :class:`~plugwire.core.transport.Transport` interface.

RPC: ``serve(address, [servicer, ...])`` serves servicers (every method kind, request
metadata, deadlines, status codes with details); ``await stub(address_or_client,
service_descriptor)`` gives a :class:`plugwire.core.rpc.Stub`. What the ttrpc wire
does not carry is listed in :attr:`TtrpcTransport.rpc_unsupported`: response
metadata, and a client's cancellation reaching the server.

Byte level: handlers (``(payload, metadata) -> reply``) keyed by full method name
``/pkg.Service/Method``; each becomes a unary ttrpc method.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar

from plugwire.core.rpc import Metadata, RpcMethod, Service
from plugwire.core.transport import Address, Channel, Transport, UnaryHandler

from ._frame import MAX_MESSAGE_SIZE
from .client import Client, ClientStream, split_method
from .server import MethodHandler, Server, ServerContext

__all__ = ["TtrpcTransport"]


def _wrap(handler: UnaryHandler) -> MethodHandler:
    async def func(payload: bytes, context: ServerContext) -> bytes:
        md = {k: vs[0] for k, vs in context.metadata.items() if vs}
        return await handler(payload, md)

    return MethodHandler(func=func)


class _TtrpcStream:
    """A ttrpc stream behind :class:`plugwire.core.rpc.StreamCall`. A server-streaming
    method carries its one request in the request frame, so that call opens at
    ``close_send`` (or the first ``recv``)."""

    initial_metadata: Metadata = ()
    trailing_metadata: Metadata = ()

    def __init__(
        self, client: Client, method: RpcMethod, timeout: float | None, metadata: Metadata
    ) -> None:
        self._client = client
        self._method = method
        self._timeout = timeout
        self._metadata = metadata
        self._payload: bytes | None = None
        self._stream: ClientStream | None = None

    async def _open(self) -> ClientStream:
        if self._stream is None:
            m = self._method
            self._stream = await self._client.open_stream(
                m.service,
                m.name,
                None if m.client_streaming else (self._payload or b""),
                client_streaming=m.client_streaming,
                server_streaming=m.server_streaming,
                timeout=self._timeout,
                metadata=self._metadata,
            )
        return self._stream

    async def send(self, data: bytes) -> None:
        if not self._method.client_streaming:
            self._payload = data
            return
        await (await self._open()).send(data)

    async def close_send(self) -> None:
        stream = await self._open()
        if self._method.client_streaming:
            await stream.close_send()

    async def recv(self) -> bytes | None:
        return await (await self._open()).recv()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()


class _TtrpcInvoker:
    def __init__(self, client: Client, *, owns: bool) -> None:
        self._client = client
        self.peer = client.peer
        self._owns = owns

    async def open(
        self, method: RpcMethod, *, timeout: float | None, metadata: Metadata
    ) -> _TtrpcStream:
        return _TtrpcStream(self._client, method, timeout, metadata)

    async def unary(
        self, method: RpcMethod, request: bytes, *, timeout: float | None, metadata: Metadata
    ) -> tuple[bytes, Metadata, Metadata]:
        reply = await self._client.call(
            method.service, method.name, request, timeout=timeout, metadata=metadata
        )
        return reply, (), ()

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()


class TtrpcTransport(Transport):
    """The ``ttrpc`` transport (entry point ``plugwire.transports:ttrpc``)."""

    name: ClassVar[str] = "ttrpc"
    rpc_unsupported: ClassVar[Mapping[str, str]] = {
        "response_metadata": "a ttrpc Response carries a status and a payload, no metadata",
        "cancellation": "ttrpc has no cancel frame: a call the client abandons runs on "
        "in the server until it ends or its deadline passes",
    }

    @contextlib.asynccontextmanager
    async def _serve(
        self,
        address: Address,
        handlers: Mapping[str, UnaryHandler],
        services: Sequence[Service] = (),
        max_message_size: int | None = None,
    ) -> AsyncIterator[Address]:
        server = Server(max_message_size=max_message_size or MAX_MESSAGE_SIZE)
        grouped: dict[str, dict[str, MethodHandler]] = {}
        for full, handler in handlers.items():
            service, method = split_method(full)
            grouped.setdefault(service, {})[method] = _wrap(handler)
        for service, methods in grouped.items():
            server.register(service, methods)
        for svc in services:
            server.add_servicer(svc.servicer, svc.spec.descriptor)
        async with server.listen(address) as bound:
            yield bound

    def serve_bytes(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    def serve_rpc(
        self, address: Address, services: Sequence[Service], *, max_message_size: int | None
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, {}, services, max_message_size)

    async def connect(self, address: Address) -> Channel:
        return await Client.connect(address)

    async def invoker(self, target: Channel | Address) -> _TtrpcInvoker:
        if isinstance(target, Client):
            return _TtrpcInvoker(target, owns=False)
        if isinstance(target, Address):
            return _TtrpcInvoker(await Client.connect(target), owns=True)
        from plugwire.core.errors import ConfigError

        raise ConfigError("not a ttrpc client", step="stub", seen=type(target).__name__)
