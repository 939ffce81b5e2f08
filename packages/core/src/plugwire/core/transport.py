"""The transport interface and the ``plugwire.transports`` entry-point registry.

A transport moves opaque request bytes to a named method on a peer and brings the
reply bytes back. Protocol families (go-plugin, NRI, dr-provision, ...) are built on
a transport's richer native API; this common, byte-level surface is what lets the
core, the CLI and the cross-transport tests treat every wire alike.

Core imports no transport: transports are found through the ``plugwire.transports``
entry-point group, so installing ``plugwire[ttrpc]`` adds the ``ttrpc`` transport.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

# Address lives in its own light module (no anyio): a plugin's start-up needs it alone.
from .address import Address
from .errors import ConfigError, RemoteError, TransportNotAvailableError
from .rpc import (
    Invoker,
    Metadata,
    RpcContext,
    RpcError,
    RpcMethod,
    Service,
    Stub,
    bind_all,
    serve_call,
    status_of,
)
from .status import StatusCode

if TYPE_CHECKING:
    from importlib import metadata

__all__ = [
    "Address",
    "Channel",
    "InProcessTransport",
    "Transport",
    "UnaryHandler",
    "available_transports",
    "load_transport",
]

ENTRY_POINT_GROUP = "plugwire.transports"

#: A server-side handler: ``(request bytes, metadata) -> reply bytes``. Raise
#: :class:`~plugwire.core.errors.RemoteError` to answer with a status code.
UnaryHandler = Callable[[bytes, Mapping[str, str]], Awaitable[bytes]]


class Channel(abc.ABC):
    """A client connection able to make unary calls by full method name."""

    @abc.abstractmethod
    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        """Call ``method`` (``/pkg.Service/Method``) and return the reply bytes.

        Raises :class:`RemoteError` when the peer answers with an error status and
        :class:`~plugwire.core.errors.ConnectionClosedError` when the connection fails.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection; pending calls fail."""

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Transport(abc.ABC):
    """A wire: serves servicers (or byte handlers) at an address, and gives clients.

    RPC (see :mod:`plugwire.core.rpc`): :meth:`serve` a set of servicers (grpcio-tools
    ``*Servicer`` subclasses, served unchanged), :meth:`stub` a client for a service.
    :attr:`rpc_unsupported` names what the wire cannot carry, with the reason.
    Byte level: :meth:`serve` a mapping ``{"/pkg.Svc/Method": handler}`` and
    :meth:`connect` a :class:`Channel` making unary calls.
    """

    #: The entry-point name (``grpc``, ``ttrpc``, ``http``, ``inproc``).
    name: ClassVar[str]
    #: anyio backends the transport runs on.
    backends: ClassVar[frozenset[str]] = frozenset({"asyncio", "trio"})
    #: Features of the RPC contract this wire cannot carry -> why. Keys: the method
    #: kinds ``unary_stream``, ``stream_unary``, ``stream_stream``, and
    #: ``response_metadata`` (initial/trailing metadata to the client) and
    #: ``cancellation`` (a client's cancel reaching the servicer).
    rpc_unsupported: ClassVar[Mapping[str, str]] = {}

    def serve(
        self,
        address: Address,
        services: Mapping[str, UnaryHandler] | Iterable[object],
        *,
        max_message_size: int | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        """Serve at ``address``; an async context manager yielding the bound address
        (port 0 and the like resolved); leaving it stops the server and fails the
        calls in flight.

        ``services``: servicers (each a grpcio-tools ``*Servicer`` subclass, a
        ``(servicer, ServiceDescriptor)`` pair or a :class:`~plugwire.core.rpc.Service`),
        or a mapping of full method names to byte-level :data:`UnaryHandler`.
        ``max_message_size`` bounds each request and reply (bytes; the wire's own
        default when None): a larger one fails its call with RESOURCE_EXHAUSTED.
        """
        if isinstance(services, Mapping) and all(isinstance(k, str) for k in services):
            return self.serve_bytes(address, services)
        return self.serve_rpc(address, bind_all(services), max_message_size=max_message_size)

    @abc.abstractmethod
    def serve_bytes(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        """Serve byte-level ``handlers`` (keyed by full method name) at ``address``."""

    def serve_rpc(
        self, address: Address, services: Sequence[Service], *, max_message_size: int | None
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        """Serve bound servicers at ``address`` (see :meth:`serve`)."""
        raise TransportNotAvailableError(
            f"transport {self.name!r} serves no servicers", step="serve", seen=self.name
        )

    @abc.abstractmethod
    async def connect(self, address: Address) -> Channel:
        """Open a byte-level channel to a server at ``address``."""

    async def invoker(self, target: Channel | Address) -> Invoker:
        """The call backend of a :class:`~plugwire.core.rpc.Stub` on ``target``."""
        raise TransportNotAvailableError(
            f"transport {self.name!r} gives no stubs", step="stub", seen=self.name
        )

    async def stub(self, target: Channel | Address | str, service: object) -> Stub:
        """A client for ``service`` (a protobuf ``ServiceDescriptor``) over ``target``:
        a :class:`Channel` of this transport (left open), or an address (the stub owns
        its connection: ``async with`` it or ``await stub.aclose()``)."""
        if isinstance(target, str):
            target = Address.parse(target)
        invoker = await self.invoker(target)
        return Stub(invoker, service, owns=isinstance(target, Address))


class _InProcessChannel(Channel):
    def __init__(self, server: _InprocServer, peer: str) -> None:
        self._server = server
        self._handlers = server.handlers
        self.peer = peer
        self._closed = False

    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        import anyio

        from .errors import ConnectionClosedError

        if self._closed:
            raise ConnectionClosedError("channel is closed", peer=self.peer, step=method)
        handler = self._handlers.get(method)
        if handler is None:
            raise RemoteError(
                f"method {method} not found", code=StatusCode.UNIMPLEMENTED, peer=self.peer
            )
        with anyio.fail_after(timeout):
            return await handler(payload, dict(metadata or {}))

    async def aclose(self) -> None:
        self._closed = True


class _InprocServer:
    def __init__(
        self,
        handlers: Mapping[str, UnaryHandler],
        services: Sequence[Service],
        max_message_size: int | None,
        tg: Any,
    ) -> None:
        self.handlers = dict(handlers)
        self.methods: dict[str, tuple[RpcMethod, Callable[..., Any]]] = {}
        for svc in services:
            for m in svc.spec.methods.values():
                self.methods[m.full_name] = (m, svc.handler(m))
        self.max_message_size = max_message_size
        self.tg = tg


class _InprocStream:
    """One in-process call: the servicer runs in the server's task group; requests
    and replies cross memory streams as bytes (so messages are really serialized)."""

    def __init__(
        self,
        server: _InprocServer,
        method: RpcMethod,
        func: Callable[..., Any],
        peer: str,
        timeout: float | None,
        metadata: Metadata,
    ) -> None:
        import anyio

        self.peer = peer
        self.method = method
        self.initial_metadata: Metadata = ()
        self.trailing_metadata: Metadata = ()
        self._server = server
        self._req_send, self._req_recv = anyio.create_memory_object_stream[bytes](float("inf"))
        self._resp_send, self._resp_recv = anyio.create_memory_object_stream[tuple[Any, ...]](
            float("inf")
        )
        md: dict[str, tuple[str, ...]] = {}
        for k, v in metadata:
            md[k] = (*md.get(k, ()), v)
        deadline = anyio.current_time() + timeout if timeout is not None else None
        self._ctx = RpcContext(method.full_name, "inproc client", md, deadline)
        self._scope = anyio.CancelScope()
        self._ended = False
        server.tg.start_soon(self._run, func)

    async def _run(self, func: Callable[..., Any]) -> None:
        ctx = self._ctx
        out = self._resp_send
        sent_md = False

        async def emit(data: bytes) -> None:
            nonlocal sent_md
            if not sent_md:
                sent_md = True
                out.send_nowait(("md", ctx.initial_metadata_out))
            out.send_nowait(("msg", data))

        async def requests() -> AsyncIterator[bytes]:
            async for data in self._req_recv:
                yield data

        with out, self._scope:
            try:
                await serve_call(
                    self.method,
                    func,
                    ctx,
                    requests(),
                    emit,
                    max_message_size=self._server.max_message_size,
                )
                end: tuple[Any, ...] = ("end", 0, "", (), ctx.trailing_metadata_out)
            except Exception as exc:
                code, message, details = status_of(exc, ctx)
                trailing = ctx.trailing_metadata_out
                if isinstance(exc, RpcError) and exc.trailing_metadata:
                    trailing = exc.trailing_metadata
                end = ("end", code, message, details, trailing)
            if not sent_md:
                out.send_nowait(("md", ctx.initial_metadata_out))
            out.send_nowait(end)
            ctx._finish()
        if self._scope.cancel_called:
            ctx._finish(cancelled=True)

    async def send(self, data: bytes) -> None:
        limit = self._server.max_message_size
        if limit is not None and len(data) > limit:
            raise RpcError(
                f"request of {len(data)} bytes exceeds the limit of {limit}",
                code=StatusCode.RESOURCE_EXHAUSTED,
                peer=self.peer,
                step=self.method.full_name,
            )
        import anyio

        try:
            self._req_send.send_nowait(data)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            from .errors import ClosedError

            raise ClosedError(
                "request stream is closed", peer=self.peer, step=self.method.full_name
            ) from None

    async def close_send(self) -> None:
        self._req_send.close()

    async def recv(self) -> bytes | None:
        import anyio

        from .errors import ConnectionClosedError

        while not self._ended:
            try:
                item = await self._resp_recv.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._ended = True
                raise ConnectionClosedError(
                    "the server stopped during the call",
                    peer=self.peer,
                    step=self.method.full_name,
                ) from None
            if item[0] == "md":
                self.initial_metadata = item[1]
            elif item[0] == "msg":
                return item[1]  # type: ignore[no-any-return]
            else:
                self._ended = True
                _, code, message, details, self.trailing_metadata = item
                if code:
                    raise RpcError(
                        message,
                        code=code,
                        details=details,
                        trailing_metadata=self.trailing_metadata,
                        initial_metadata=self.initial_metadata,
                        peer=self.peer,
                        step=self.method.full_name,
                    )
        return None

    async def aclose(self) -> None:
        self._req_send.close()
        if not self._ctx.done():
            self._ctx._cancelled = True  # before the cancel, so `finally:` blocks see it
        self._scope.cancel()
        self._resp_recv.close()


class _InprocInvoker:
    def __init__(self, address: Address) -> None:
        self.address = address
        self.peer = str(address)

    def _server(self, method: RpcMethod) -> tuple[_InprocServer, Callable[..., Any]]:
        from .errors import ConnectionClosedError

        server = InProcessTransport._servers.get(self.address.address)
        if server is None:
            raise ConnectionClosedError(
                "nothing listens there", peer=self.peer, step=method.full_name
            )
        entry = server.methods.get(method.full_name)
        if entry is None:
            raise RpcError(
                f"method {method.full_name} not found",
                code=StatusCode.UNIMPLEMENTED,
                peer=self.peer,
                step=method.full_name,
            )
        return server, entry[1]

    async def open(
        self, method: RpcMethod, *, timeout: float | None, metadata: Metadata
    ) -> _InprocStream:
        server, func = self._server(method)
        return _InprocStream(server, method, func, self.peer, timeout, metadata)

    async def unary(
        self, method: RpcMethod, request: bytes, *, timeout: float | None, metadata: Metadata
    ) -> tuple[bytes, Metadata, Metadata]:
        import anyio

        stream = await self.open(method, timeout=timeout, metadata=metadata)
        try:
            await stream.send(request)
            await stream.close_send()
            reply = await stream.recv()
            if reply is None:
                raise RpcError(
                    "call ended without a reply",
                    code=StatusCode.INTERNAL,
                    peer=self.peer,
                    step=method.full_name,
                )
            await stream.recv()
            return reply, stream.initial_metadata, stream.trailing_metadata
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def aclose(self) -> None:
        return None


class InProcessTransport(Transport):
    """A transport inside one process: handy for tests and for in-process plugins.

    Servicers run in the server's task group; messages are serialized across, so a
    servicer sees exactly what it would on a wire. Every method kind is supported.
    """

    name = "inproc"
    _servers: ClassVar[dict[str, _InprocServer]] = {}

    @contextlib.asynccontextmanager
    async def _serve(
        self,
        address: Address,
        handlers: Mapping[str, UnaryHandler],
        services: Sequence[Service] = (),
        max_message_size: int | None = None,
    ) -> AsyncIterator[Address]:
        import anyio

        if address.address in self._servers:
            raise ConfigError("address in use", step="serve", seen=str(address))
        async with anyio.create_task_group() as tg:
            self._servers[address.address] = _InprocServer(handlers, services, max_message_size, tg)
            try:
                yield address
            finally:
                del self._servers[address.address]
                tg.cancel_scope.cancel()

    def serve_bytes(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    def serve_rpc(
        self, address: Address, services: Sequence[Service], *, max_message_size: int | None
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, {}, services, max_message_size)

    async def connect(self, address: Address) -> Channel:
        from .errors import ConnectionClosedError

        server = self._servers.get(address.address)
        if server is None:
            raise ConnectionClosedError("nothing listens there", step="connect", seen=str(address))
        return _InProcessChannel(server, str(address))

    async def invoker(self, target: Channel | Address) -> Invoker:
        if isinstance(target, _InProcessChannel):
            return _InprocInvoker(Address.parse(target.peer))
        if isinstance(target, Address):
            return _InprocInvoker(target)
        raise ConfigError("not an inproc channel", step="stub", seen=type(target).__name__)


def available_transports() -> dict[str, metadata.EntryPoint]:
    """The installed transports by name, from the ``plugwire.transports`` entry points."""
    from importlib import metadata  # ~50 ms: only when transports are looked up

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_transport(name: str) -> Transport:
    """Instantiate the transport registered as ``name``.

    Raises :class:`TransportNotAvailableError` naming the extra to install when it
    is not installed.
    """
    eps = available_transports()
    if name not in eps:
        raise TransportNotAvailableError(
            f"transport {name!r} is not installed; install it with: pip install 'plugwire[{name}]'",
            expected=f"one of {sorted(eps)}",
            seen=name,
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise TransportNotAvailableError(
            f"entry point {name!r} does not name a Transport subclass", seen=repr(cls)
        )
    return cls()
