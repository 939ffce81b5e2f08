"""``plugin.GRPCBroker``: extra gRPC connections between host and plugin, by id.

Both sides own a :class:`GrpcBroker` joined by one ``StartStream`` bidi stream
(the host opens it, the plugin serves it). :meth:`GrpcBroker.accept` starts a gRPC
server for an id and tells the peer where it listens (a ``ConnInfo`` on the stream);
:meth:`GrpcBroker.dial` waits up to 5 s for the peer's ``ConnInfo`` with that id and
connects to it, with the same TLS as the main connection. Ids come from
:meth:`GrpcBroker.next_id` and are passed to the peer inside an ordinary RPC
(``PutRequest.add_server`` in go-plugin's bidirectional example).

With multiplexing (``PLUGIN_MULTIPLEX_GRPC``) the broker connections run as yamux
streams of the main connection instead of new sockets; a dial first sends a knock
and needs ``{knock: true, ack: true}`` back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

import grpc
from plugwire.core.address import Address
from plugwire.core.controller import CapabilityDeniedError, Controller
from plugwire.core.errors import (
    ClosedError,
    ConnectionClosedError,
    PluginTimeoutError,
    ProtocolError,
)

from .._generated.plugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from .._listen import SERVER_OPTIONS, ListenConfig
from .._wire import Listening, open_channel, start_server
from ..mtls import TLSConfig

__all__ = [
    "BrokerServer",
    "BrokerServicer",
    "ConnInfo",
    "GrpcBroker",
    "Register",
    "capability_interceptor",
]

ConnInfo = grpc_broker_pb2.ConnInfo
#: Registers services on a fresh broker server, e.g.
#: ``lambda server: add_FooServicer_to_server(impl, server)``.
Register = Callable[[grpc.aio.Server], None]
_log = logging.getLogger("plugwire.grpc.goplugin.broker")
DIAL_TIMEOUT = 5.0
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]


class _Stream(Protocol):
    async def send(self, info: grpc_broker_pb2.ConnInfo) -> None: ...
    async def recv(self) -> grpc_broker_pb2.ConnInfo | None: ...
    def close(self) -> None: ...


class _ServerSideStream:
    """The plugin's end: the host's ``StartStream`` call, served."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context
        self.closed = asyncio.Event()

    async def send(self, info: grpc_broker_pb2.ConnInfo) -> None:
        await self._context.write(info)

    async def recv(self) -> grpc_broker_pb2.ConnInfo | None:
        msg = await self._context.read()
        if msg is _EOF:
            return None
        return cast(grpc_broker_pb2.ConnInfo, msg)

    def close(self) -> None:
        self.closed.set()


class _ClientSideStream:
    """The host's end: a ``StartStream`` call it opened."""

    def __init__(self, call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
        self._call = call

    async def send(self, info: grpc_broker_pb2.ConnInfo) -> None:
        await self._call.write(info)

    async def recv(self) -> grpc_broker_pb2.ConnInfo | None:
        msg = await self._call.read()
        if msg is _EOF:
            return None
        return cast(grpc_broker_pb2.ConnInfo, msg)

    def close(self) -> None:
        self._call.cancel()


@attrs.define(eq=False)
class BrokerServer:
    """A gRPC server started by :meth:`GrpcBroker.accept` for one broker id."""

    id: int
    address: Address
    server: grpc.aio.Server
    _listening: Listening | None = None
    _on_close: Callable[[], None] | None = None

    async def aclose(self, grace: float | None = None) -> None:
        """Stop the server and remove its socket."""
        await self.server.stop(grace)
        if self._listening is not None:
            await self._listening.aclose()
            self._listening = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    async def __aenter__(self) -> BrokerServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class GrpcBroker:
    """One side of go-plugin's GRPCBroker (see the module docstring).

    ``tls`` is this side's TLS (``None``: plaintext); ``listen`` says where broker
    sockets go (go-plugin: ``PLUGIN_UNIX_SOCKET_DIR``/``GROUP``); ``muxer`` enables
    multiplexing over the main connection; ``interceptors`` run on every broker
    server this side starts (the host's capability check).
    """

    def __init__(
        self,
        *,
        tls: TLSConfig | None = None,
        listen: ListenConfig | None = None,
        network: str = "unix",
        muxer: Any = None,
        peer: str | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        self._interceptors = tuple(interceptors)
        self._tls = tls
        self._listen = listen if listen is not None else ListenConfig()
        self._network = network
        self._muxer = muxer
        self._peer = peer
        self._next_id = 0
        self._stream: _Stream | None = None
        self._stream_ready = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._client_pending: dict[int, asyncio.Queue[grpc_broker_pb2.ConnInfo]] = {}
        self._server_pending: dict[int, asyncio.Queue[grpc_broker_pb2.ConnInfo]] = {}
        self._servers: set[BrokerServer] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    def new_server(self) -> grpc.aio.Server:
        """A gRPC server for one broker id (with this side's interceptors)."""
        return grpc.aio.server(options=SERVER_OPTIONS, interceptors=self._interceptors)

    @property
    def multiplexed(self) -> bool:
        """Whether broker connections run over the main connection (yamux)."""
        return self._muxer is not None

    def next_id(self) -> int:
        """A fresh broker id (1, 2, ...)."""
        self._next_id += 1
        return self._next_id

    # -- the stream ----------------------------------------------------------

    async def run_stream(self, stream: _Stream) -> None:
        """Use ``stream`` and route what arrives on it until it ends or the broker closes."""
        self._stream = stream
        self._stream_ready.set()
        try:
            while not self._closed.is_set():
                try:
                    msg = await stream.recv()
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                    _log.debug("broker stream ended: %s", exc)
                    return
                if msg is None:
                    return
                self._route(msg)
        finally:
            self._stream = None
            self._stream_ready.clear()

    def _route(self, msg: grpc_broker_pb2.ConnInfo) -> None:
        if msg.HasField("knock") and msg.knock.knock and not msg.knock.ack:
            queue = self._queue(self._server_pending, msg.service_id)
        else:
            queue = self._queue(self._client_pending, msg.service_id)
            loop = asyncio.get_running_loop()
            loop.call_later(DIAL_TIMEOUT, self._expire, msg.service_id, queue)
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(msg)

    def _expire(self, service_id: int, queue: asyncio.Queue[grpc_broker_pb2.ConnInfo]) -> None:
        if self._client_pending.get(service_id) is queue:
            del self._client_pending[service_id]

    @staticmethod
    def _queue(
        table: dict[int, asyncio.Queue[grpc_broker_pb2.ConnInfo]], service_id: int
    ) -> asyncio.Queue[grpc_broker_pb2.ConnInfo]:
        queue = table.get(service_id)
        if queue is None:
            queue = table[service_id] = asyncio.Queue(maxsize=1)
        return queue

    async def _send(self, info: grpc_broker_pb2.ConnInfo) -> None:
        if self._closed.is_set():
            raise ClosedError("broker closed", peer=self._peer, step="broker send")
        try:
            await asyncio.wait_for(self._stream_ready.wait(), DIAL_TIMEOUT)
        except TimeoutError:
            raise ConnectionClosedError(
                "the broker stream is not open", peer=self._peer, step="broker send"
            ) from None
        stream = self._stream
        if stream is None:
            raise ConnectionClosedError(
                "the broker stream closed", peer=self._peer, step="broker send"
            )
        async with self._send_lock:
            try:
                await stream.send(info)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, RuntimeError) as exc:
                raise ConnectionClosedError(
                    "the broker stream failed", peer=self._peer, step="broker send", seen=str(exc)
                ) from None

    # -- accept / dial -------------------------------------------------------

    async def accept(self, service_id: int, register: Register) -> BrokerServer:
        """Serve ``register``'s services for ``service_id`` and announce them to the peer.

        Returns the running :class:`BrokerServer`; close it (or the broker) to stop.
        """
        if self._closed.is_set():
            raise ClosedError("broker closed", peer=self._peer, step=f"broker accept {service_id}")
        if self._muxer is not None:
            return cast(BrokerServer, await self._muxer.accept(self, service_id, register))
        server = self.new_server()
        register(server)
        listening = await start_server(
            server, network=self._network, listen=self._listen, tls=self._tls
        )
        address = listening.address
        handle = BrokerServer(service_id, address, server, listening)
        handle._on_close = lambda: self._servers.discard(handle)
        self._servers.add(handle)
        try:
            await self._send(
                grpc_broker_pb2.ConnInfo(
                    service_id=service_id, network=address.network, address=address.address
                )
            )
        except BaseException:
            await handle.aclose()
            raise
        return handle

    async def accept_and_serve(self, service_id: int, register: Register) -> None:
        """:meth:`accept` and serve until the broker closes or the task is cancelled."""
        handle = await self.accept(service_id, register)
        try:
            await self._closed.wait()
        finally:
            await asyncio.shield(handle.aclose(0.5))

    def spawn_accept_and_serve(self, service_id: int, register: Register) -> asyncio.Task[None]:
        """Run :meth:`accept_and_serve` in a task the broker cancels when it closes."""
        task = asyncio.get_running_loop().create_task(self.accept_and_serve(service_id, register))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def dial(self, service_id: int, *, timeout: float = DIAL_TIMEOUT) -> grpc.aio.Channel:
        """A channel to the peer's broker server ``service_id`` (waits ``timeout`` for it).

        Raises :class:`PluginTimeoutError` when no ConnInfo for the id arrives in time
        and :class:`ProtocolError` for an address it cannot use.
        """
        if self._closed.is_set():
            raise ClosedError("broker closed", peer=self._peer, step=f"broker dial {service_id}")
        if self._muxer is not None:
            return cast(grpc.aio.Channel, await self._muxer.dial(self, service_id))
        queue = self._queue(self._client_pending, service_id)
        try:
            info = await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            raise PluginTimeoutError(
                "timeout waiting for connection info",
                peer=self._peer,
                step=f"broker dial {service_id}",
                expected=f"a ConnInfo for id {service_id} within {timeout} s",
            ) from None
        finally:
            if self._client_pending.get(service_id) is queue and queue.empty():
                del self._client_pending[service_id]
        if info.network not in ("unix", "tcp"):
            raise ProtocolError(
                "unknown address type",
                peer=self._peer,
                step=f"broker dial {service_id}",
                expected="unix or tcp",
                seen=f"{info.network}:{info.address}",
            )
        return await open_channel(Address(info.network, info.address), self._tls)  # type: ignore[arg-type]

    async def send_raw(self, info: grpc_broker_pb2.ConnInfo) -> None:
        """Send one ConnInfo on the stream (used by the multiplexer for knocks)."""
        await self._send(info)

    async def receive_knock(self, service_id: int) -> grpc_broker_pb2.ConnInfo:
        """Wait for the next knock for ``service_id`` (multiplexing)."""
        return await self._queue(self._server_pending, service_id).get()

    async def receive_ack(
        self, service_id: int, timeout: float = DIAL_TIMEOUT
    ) -> grpc_broker_pb2.ConnInfo:
        """Wait for the knock acknowledgement for ``service_id`` (multiplexing)."""
        try:
            return await asyncio.wait_for(
                self._queue(self._client_pending, service_id).get(), timeout
            )
        except TimeoutError:
            raise PluginTimeoutError(
                f"timeout waiting for multiplexing knock handshake on id {service_id}",
                peer=self._peer,
                step=f"broker knock {service_id}",
            ) from None

    # -- closing -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def aclose(self) -> None:
        """Close the stream, stop every broker server, fail pending dials."""
        if self._closed.is_set():
            return
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        for task in list(self._tasks):
            task.cancel()
        for handle in list(self._servers):
            await handle.aclose(0)
        self._servers.clear()


class BrokerServicer(grpc_broker_pb2_grpc.GRPCBrokerServicer):
    """The plugin's ``GRPCBroker`` service: hands the host's stream to the broker."""

    def __init__(self, broker: GrpcBroker) -> None:
        self._broker = broker

    async def StartStream(  # type: ignore[override]
        self, request_iterator: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        stream = _ServerSideStream(context)
        reader = asyncio.ensure_future(self._broker.run_stream(stream))
        closer = asyncio.ensure_future(stream.closed.wait())
        try:
            await asyncio.wait({reader, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            closer.cancel()


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor


class _CapabilityInterceptor(_ServerInterceptor):
    """Refuses every call with ``PERMISSION_DENIED`` unless the controller grants
    ``capability``; the status details are the :class:`CapabilityDeniedError` message."""

    def __init__(self, controller: Controller, capability: str) -> None:
        self._controller = controller
        self._capability = capability

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        try:
            self._controller.require(self._capability)
        except CapabilityDeniedError as exc:
            _log.warning("%s (%s)", exc, handler_call_details.method)
            denied: grpc.RpcMethodHandler[Any, Any] = _denied(handler, str(exc))
            return denied
        return handler


def _denied(handler: grpc.RpcMethodHandler[Any, Any] | None, details: str) -> Any:
    async def deny(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, details)

    req = getattr(handler, "request_deserializer", None)
    resp = getattr(handler, "response_serializer", None)
    if handler is None or not (handler.request_streaming or handler.response_streaming):
        return grpc.unary_unary_rpc_method_handler(deny, req, resp)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny, req, resp)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, req, resp)
    return grpc.unary_stream_rpc_method_handler(deny, req, resp)


def capability_interceptor(
    controller: Controller, capability: str
) -> grpc.aio.ServerInterceptor[Any, Any]:
    """A server interceptor for broker servers: calls need ``capability`` granted by
    ``controller`` (checked at each call), else fail with ``PERMISSION_DENIED``."""
    return _CapabilityInterceptor(controller, capability)


def open_client_stream(channel: grpc.aio.Channel) -> _ClientSideStream:
    """Open the host's ``StartStream`` call on ``channel``."""
    stub = grpc_broker_pb2_grpc.GRPCBrokerStub(channel)
    return _ClientSideStream(stub.StartStream())  # type: ignore[call-arg]
