"""The ttrpc server: services, method handlers and per-connection request handling.

Handlers follow the grpc.aio servicer convention (so one servicer class serves
both transports, see :mod:`plugwire.ttrpc.service`):

================  ==========================================================
unary             ``async def M(self, request, context) -> reply``
server streaming  ``async def M(self, request, context)`` as an async generator
client streaming  ``async def M(self, request_iterator, context) -> reply``
bidirectional     ``async def M(self, request_iterator, context)`` async generator
================  ==========================================================

Raise :class:`~plugwire.core.errors.RemoteError` (or call ``context.abort``) to
answer with a status code, message and details; any other exception answers
UNKNOWN with its text; a passed ``timeout_nano`` deadline answers
DEADLINE_EXCEEDED. Protocol violations are answered exactly as upstream
containerd/ttrpc answers them (same codes and messages) and never end the
connection; only end of stream or a socket error does, which cancels the
connection's running handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc
import attrs

from plugwire.core.errors import ConfigError, ConnectionClosedError, PlugwireError, RemoteError
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address

from ._envelope import EnvelopeError, Request, decode_request, encode_response
from ._frame import (
    FLAG_NO_DATA,
    FLAG_REMOTE_CLOSED,
    MAX_MESSAGE_SIZE,
    TYPE_DATA,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    FrameDecoder,
    encode_frame,
)
from ._sockets import accept, bind, socket_stream
from ._writer import FrameWriter
from .credentials import Handshake
from .errors import oversize_message

__all__ = ["MethodHandler", "Server", "ServerContext"]

log = logging.getLogger("plugwire.ttrpc.server")

_STREAM_BUFFER = 4096
_STREAM_BUFFER_BYTES = 64 << 20


def _identity(data: Any) -> Any:
    return data


def _to_bytes(data: Any) -> bytes:
    return bytes(data)


@attrs.frozen
class MethodHandler:
    """How to run one method: the handler, its streaming kind and (de)serialisers.

    ``func`` receives ``(request_or_iterator, context)``. The default
    (de)serialisers pass bytes through.
    """

    func: Callable[..., Any]
    client_streaming: bool = False
    server_streaming: bool = False
    request_deserializer: Callable[[bytes], Any] = _identity
    response_serializer: Callable[[Any], bytes] = _to_bytes


class ServerContext:
    """What a handler knows about its call.

    ``method`` (``/svc/Method``), ``peer``, ``metadata`` (key -> values, as sent),
    ``deadline`` (anyio clock, or None), ``stream_id``.
    """

    __slots__ = ("deadline", "metadata", "method", "peer", "stream_id")

    def __init__(
        self,
        method: str,
        peer: str,
        metadata: Mapping[str, tuple[str, ...]],
        deadline: float | None,
        stream_id: int,
    ) -> None:
        self.method = method
        self.peer = peer
        self.metadata = metadata
        self.deadline = deadline
        self.stream_id = stream_id

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """(key, value) pairs, like grpc's ``ServicerContext.invocation_metadata()``."""
        return tuple((k, v) for k, vs in self.metadata.items() for v in vs)

    def metadata_value(self, key: str) -> str | None:
        """The first value of ``key`` (case-insensitive, like ttrpc ``MD.Get``)."""
        values = self.metadata.get(key) or self.metadata.get(key.lower())
        if not values:
            low = key.lower()
            for k, vs in self.metadata.items():
                if k.lower() == low and vs:
                    return vs[0]
            return None
        return values[0]

    def time_remaining(self) -> float | None:
        """Seconds until the deadline, or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - anyio.current_time())

    def abort(self, code: int, message: str = "", details: Sequence[bytes] = ()) -> None:
        """End the call with ``code``: raises :class:`RemoteError`."""
        raise RemoteError(message, code=int(code), details=details, step=self.method)


def _metadata_dict(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    md: dict[str, tuple[str, ...]] = {}
    for k, v in pairs:
        md[k] = (*md.get(k, ()), v)
    return md


class _RecvQueue:
    """Messages a client streams to a handler."""

    __slots__ = ("buffered", "closed", "event", "items")

    def __init__(self) -> None:
        self.items: deque[bytes] = deque()
        self.buffered = 0
        self.closed = False
        self.event: anyio.Event | None = None

    def push(self, data: bytes) -> str | None:
        if self.closed:
            return "ttrpc: stream closed"
        if len(self.items) >= _STREAM_BUFFER or self.buffered > _STREAM_BUFFER_BYTES:
            return "ttrpc: stream buffer full"
        self.items.append(data)
        self.buffered += len(data)
        if self.event is not None:
            self.event.set()
        return None

    def close(self) -> None:
        self.closed = True
        if self.event is not None:
            self.event.set()

    async def iterate(self, deserialize: Callable[[bytes], Any]) -> AsyncIterator[Any]:
        """The request iterator handed to a client-streaming handler. A message that
        does not decode raises INTERNAL ``ttrpc: error unmarshalling payload`` (as Go)."""
        while True:
            while self.items:
                data = self.items.popleft()
                self.buffered -= len(data)
                try:
                    message = deserialize(data)
                except Exception as exc:
                    raise RemoteError(
                        f"ttrpc: error unmarshalling payload: {exc}", code=StatusCode.INTERNAL
                    ) from exc
                yield message
            if self.closed:
                return
            self.event = anyio.Event()
            await self.event.wait()
            self.event = None


class Server:
    """A ttrpc server: register services, then serve addresses, listeners or streams.

    ``max_message_size`` bounds both what is accepted and what is sent (default
    4 MiB, as upstream). ``handshake`` (see :mod:`plugwire.ttrpc.credentials`) checks
    every accepted or given socket first; a connection that fails it is closed.
    """

    def __init__(
        self,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        handshake: Handshake | None = None,
    ) -> None:
        self.max_message_size = max_message_size
        self.handshake = handshake
        self._services: dict[str, dict[str, MethodHandler]] = {}
        self._connections: set[_ServerConnection] = set()

    # -- registration ---------------------------------------------------------------

    def register(self, service: str, methods: Mapping[str, MethodHandler]) -> None:
        """Register ``service`` (full name, e.g. ``pkg.Service``) with its methods.

        Raises :class:`ConfigError` when the service is already registered.
        """
        if service in self._services:
            raise ConfigError("duplicate service registered", step="register", seen=service)
        self._services[service] = dict(methods)

    def add_servicer(self, servicer: object, service: Any) -> None:
        """Register a servicer object for a protobuf ``ServiceDescriptor`` (see
        :func:`plugwire.ttrpc.service.method_handlers`)."""
        from .service import method_handlers

        self.register(service.full_name, method_handlers(servicer, service))

    @property
    def services(self) -> Mapping[str, Mapping[str, MethodHandler]]:
        return self._services

    # -- serving ----------------------------------------------------------------------

    async def serve_stream(
        self, stream: anyio.abc.ByteStream, *, peer: str = "ttrpc client"
    ) -> None:
        """Serve one connection over any anyio byte stream until it ends.

        Returns when the peer closes the stream (running handlers are cancelled);
        closes the stream on return. Never raises for anything the peer sends.
        """
        conn = _ServerConnection(self, stream, peer)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    async def serve_socket(self, sock: socket.socket | int, *, peer: str = "ttrpc client") -> None:
        """Serve one already-connected socket (object or file descriptor; ownership passes)."""
        if isinstance(sock, int):
            sock = socket.socket(fileno=sock)
        if not self._handshake(sock, peer):
            return
        await self.serve_stream(await socket_stream(sock), peer=peer)

    def _handshake(self, sock: socket.socket, peer: str) -> bool:
        if self.handshake is None:
            return True
        try:
            self.handshake(sock)
        except (PlugwireError, OSError) as exc:
            log.warning("ttrpc: refusing connection from %s after handshake: %s", peer, exc)
            sock.close()
            return False
        return True

    async def serve_listener(self, listener: anyio.abc.Listener[Any]) -> None:
        """Accept and serve connections from an anyio ``listener`` until cancelled."""

        async def handle(stream: Any) -> None:
            await self.serve_stream(stream, peer=_peer_name(stream))

        await listener.serve(handle)

    async def _drain(self, connections: set[_ServerConnection]) -> None:
        """Close connections as they become idle (like Go's ``Server.Shutdown``)."""
        while connections:
            for conn in list(connections):
                if conn.active == 0:
                    await conn.close()
            await anyio.sleep(0.01)

    @contextlib.asynccontextmanager
    async def listen(self, address: Address | str, *, grace: float = 0.0) -> AsyncIterator[Address]:
        """Serve at ``address`` (``unix:/path``, ``/path`` or ``host:port``; port 0 picks one)
        inside the block; yields the bound :class:`Address`.

        Leaving the block stops accepting at once; with ``grace`` (seconds) the
        calls in flight may finish first, each connection being closed as soon as
        it is idle (as Go's ``Server.Shutdown``); then whatever still runs is
        cancelled and its connection closed. A unix socket file is removed.

        Raises :class:`ConfigError` for other networks and ``OSError`` when binding fails.
        """
        addr = Address.parse(address) if isinstance(address, str) else address
        sock, bound = bind(addr)
        mine: set[_ServerConnection] = set()
        name = str(bound)

        async def serve_accepted(conn_sock: socket.socket) -> None:
            if not self._handshake(conn_sock, name):
                return
            conn = _ServerConnection(
                self, await socket_stream(conn_sock), _conn_peer(conn_sock, name)
            )
            mine.add(conn)
            self._connections.add(conn)
            try:
                await conn.run()
            finally:
                mine.discard(conn)
                self._connections.discard(conn)

        try:
            async with anyio.create_task_group() as tg:
                accepting = anyio.CancelScope()

                async def accept_loop() -> None:
                    with accepting:
                        while True:
                            tg.start_soon(serve_accepted, await accept(sock))

                tg.start_soon(accept_loop)
                try:
                    yield bound
                finally:
                    accepting.cancel()
                    if grace > 0:
                        with anyio.move_on_after(grace, shield=True):
                            await self._drain(mine)
                    tg.cancel_scope.cancel()
        finally:
            sock.close()
            if addr.network == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(addr.address)

    async def serve(
        self,
        address: Address | str,
        *,
        grace: float = 0.0,
        task_status: anyio.abc.TaskStatus[Address] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``address`` until cancelled (reports the bound address to ``tg.start``);
        ``grace`` as for :meth:`listen`."""
        async with self.listen(address, grace=grace) as bound:
            task_status.started(bound)
            await anyio.sleep_forever()


def _conn_peer(conn: socket.socket, listen_name: str) -> str:
    if conn.family == socket.AF_UNIX:
        return f"client of {listen_name}"
    try:
        host, port = conn.getpeername()[:2]
    except OSError:
        return f"client of {listen_name}"
    return f"{host}:{port}"


def _peer_name(stream: Any) -> str:
    try:
        remote = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except Exception:
        return "ttrpc client"
    if isinstance(remote, tuple):
        return f"{remote[0]}:{remote[1]}"
    return f"unix:{remote}" if remote else "ttrpc client"


class _ServerConnection:
    """State of one served connection (mirrors upstream ``serverConn.run``)."""

    def __init__(self, server: Server, stream: anyio.abc.ByteStream, peer: str) -> None:
        self.server = server
        self.stream = stream
        self.peer = peer
        self.writer = FrameWriter(stream, peer)
        self.decoder = FrameDecoder(server.max_message_size)
        self.last_stream_id = 0
        self.streams: dict[int, _RecvQueue] = {}
        self.nursery: Any = None  # a trio nursery when running on trio
        #: Calls being handled (unary and streams); 0 means idle.
        self.active = 0
        # On asyncio, handlers run as plain tasks (much cheaper to start than anyio
        # task-group children); they are cancelled when the connection ends.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        with contextlib.suppress(RuntimeError):
            self.loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Close the connection: its read loop ends and running handlers are cancelled."""
        with contextlib.suppress(Exception):
            await self.stream.aclose()

    def spawn(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self.active += 1
        loop = self.loop
        if loop is not None:
            task = loop.create_task(func(*args))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            assert self.nursery is not None
            self.nursery.start_soon(func, *args)

    async def run(self) -> None:
        try:
            if self.loop is not None:
                await self._read_loop()
            else:
                # trio: handlers run in a native nursery (cheaper than anyio's wrapper)
                import trio

                async with trio.open_nursery() as nursery:
                    self.nursery = nursery
                    await self._read_loop()
                    nursery.cancel_scope.cancel()
        finally:
            self.writer.fail(ConnectionClosedError("connection closed", peer=self.peer))
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            with anyio.CancelScope(shield=True):
                if tasks:
                    await asyncio.wait(tasks, timeout=5)
                with contextlib.suppress(Exception):
                    await self.stream.aclose()

    async def _read_loop(self) -> None:
        stream = self.stream
        feed = self.decoder.feed
        handle = self.handle
        while True:
            try:
                data = await stream.receive()
            except (
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ) as exc:
                if self.decoder.pending:
                    log.debug(
                        "ttrpc: %s closed mid-frame (%d bytes)", self.peer, self.decoder.pending
                    )
                elif not isinstance(exc, anyio.EndOfStream):
                    log.debug("ttrpc: connection from %s failed: %r", self.peer, exc)
                return
            for frame in feed(data):
                await handle(*frame)

    async def send_status(
        self, sid: int, code: int, message: str, details: Sequence[bytes] = ()
    ) -> None:
        body = encode_response(None, code, message, details)
        with contextlib.suppress(ConnectionClosedError):
            await self.writer.write(encode_frame(sid, TYPE_RESPONSE, 0, body))

    async def handle(self, sid: int, typ: int, flags: int, data: bytes, oversized: int) -> None:
        if oversized:
            await self.send_status(
                sid,
                StatusCode.RESOURCE_EXHAUSTED,
                oversize_message(oversized, self.server.max_message_size),
            )
            return
        if sid % 2 != 1:
            await self.send_status(
                sid,
                StatusCode.INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams",
            )
            return
        if typ == TYPE_REQUEST:
            if sid <= self.last_stream_id:
                await self.send_status(
                    sid,
                    StatusCode.INVALID_ARGUMENT,
                    "StreamID cannot be re-used and must increment",
                )
                return
            self.last_stream_id = sid
            try:
                req = decode_request(data)
            except EnvelopeError as exc:
                await self.send_status(
                    sid, StatusCode.INVALID_ARGUMENT, f"unmarshal request error: {exc}"
                )
                return
            methods = self.server._services.get(req.service)
            if methods is None:
                await self.send_status(sid, StatusCode.UNIMPLEMENTED, f"service {req.service}")
                return
            handler = methods.get(req.method)
            if handler is None:
                await self.send_status(sid, StatusCode.UNIMPLEMENTED, f"method {req.method}")
                return
            if not handler.client_streaming and not handler.server_streaming:
                self.spawn(self.run_unary, sid, handler, req)
                return
            queue = _RecvQueue()
            if req.payload is not None or not handler.client_streaming:
                queue.push(req.payload or b"")
            if not handler.client_streaming:
                queue.close()
            self.streams[sid] = queue
            self.spawn(self.run_stream, sid, handler, req, queue)
        elif typ == TYPE_DATA:
            queue_or_none = self.streams.get(sid)
            if queue_or_none is None:
                await self.send_status(
                    sid, StatusCode.INVALID_ARGUMENT, "StreamID is no longer active"
                )
                return
            if not flags & FLAG_NO_DATA:
                err = queue_or_none.push(data)
                if err is not None:
                    await self.send_status(
                        sid, StatusCode.INVALID_ARGUMENT, f"data handling error: {err}"
                    )
                    return
            if flags & FLAG_REMOTE_CLOSED:
                queue_or_none.close()
                if data:
                    await self.send_status(
                        sid, StatusCode.INVALID_ARGUMENT, "data close message cannot include data"
                    )
        else:
            log.debug(
                "ttrpc: ignoring frame of unknown type %d on stream %d from %s", typ, sid, self.peer
            )

    def _context(self, sid: int, req: Request) -> ServerContext:
        # as Go: any non-zero timeout is a deadline (a negative one has already passed)
        deadline = anyio.current_time() + req.timeout_nano / 1e9 if req.timeout_nano else None
        md = _metadata_dict(req.metadata) if req.metadata else {}
        return ServerContext(f"/{req.service}/{req.method}", self.peer, md, deadline, sid)

    async def _reply(self, sid: int, payload: bytes | None) -> None:
        if payload is not None and len(payload) > self.server.max_message_size:
            await self._fail(
                sid,
                StatusCode.RESOURCE_EXHAUSTED,
                oversize_message(len(payload), self.server.max_message_size),
            )
            return
        await self.writer.write(
            encode_frame(sid, TYPE_RESPONSE, 0, encode_response(payload)), len(self.tasks) > 1
        )

    async def _fail(self, sid: int, code: int, message: str, details: Sequence[bytes] = ()) -> None:
        await self.writer.write(
            encode_frame(sid, TYPE_RESPONSE, 0, encode_response(None, code, message, details))
        )

    async def _fail_from(self, sid: int, exc: BaseException, ctx: ServerContext) -> None:
        if isinstance(exc, RemoteError):
            await self._fail(sid, exc.code, exc.message, exc.details)
        elif isinstance(exc, PlugwireError):
            await self._fail(sid, StatusCode.UNKNOWN, str(exc))
        else:
            log.warning("ttrpc: handler %s raised", ctx.method, exc_info=exc)
            await self._fail(sid, StatusCode.UNKNOWN, str(exc) or type(exc).__name__)

    async def run_unary(self, sid: int, handler: MethodHandler, req: Request) -> None:
        ctx = self._context(sid, req)
        try:
            try:
                request = handler.request_deserializer(req.payload or b"")
            except Exception as exc:
                await self._fail(
                    sid, StatusCode.INTERNAL, f"ttrpc: error unmarshalling payload: {exc}"
                )
                return
            if ctx.deadline is None:
                reply = await handler.func(request, ctx)
            else:
                with anyio.CancelScope(deadline=ctx.deadline) as scope:
                    reply = await handler.func(request, ctx)
                if scope.cancelled_caught:
                    await self._fail(sid, StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
                    return
            try:
                payload = handler.response_serializer(reply)
            except Exception as exc:
                await self._fail(
                    sid, StatusCode.INTERNAL, f"ttrpc: error marshaling payload: {exc}"
                )
                return
            await self._reply(sid, payload)
        except ConnectionClosedError:
            pass
        except Exception as exc:
            with contextlib.suppress(ConnectionClosedError):
                await self._fail_from(sid, exc, ctx)
        finally:
            self.active -= 1

    async def run_stream(
        self, sid: int, handler: MethodHandler, req: Request, queue: _RecvQueue
    ) -> None:
        ctx = self._context(sid, req)
        try:
            try:
                scope = anyio.CancelScope(
                    deadline=ctx.deadline if ctx.deadline is not None else float("inf")
                )
                with scope:
                    await self._drive(sid, handler, ctx, queue)
                if scope.cancelled_caught:
                    await self._fail(sid, StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
            except ConnectionClosedError:
                pass
            except Exception as exc:
                with contextlib.suppress(ConnectionClosedError):
                    await self._fail_from(sid, exc, ctx)
        finally:
            self.active -= 1
            self.streams.pop(sid, None)
            queue.close()

    async def _drive(
        self, sid: int, handler: MethodHandler, ctx: ServerContext, queue: _RecvQueue
    ) -> None:
        deserialize = handler.request_deserializer
        if handler.client_streaming:
            arg: Any = queue.iterate(deserialize)
        else:
            first = queue.items.popleft() if queue.items else b""
            try:
                arg = deserialize(first)
            except Exception as exc:
                await self._fail(
                    sid, StatusCode.INTERNAL, f"ttrpc: error unmarshalling payload: {exc}"
                )
                return
        result = handler.func(arg, ctx)
        if inspect.isawaitable(result):
            result = await result
        serialize = handler.response_serializer
        if handler.server_streaming:
            if result is not None:
                write = self.writer.write
                limit = self.server.max_message_size
                closing = (
                    contextlib.aclosing(result)
                    if hasattr(result, "aclose")
                    else contextlib.nullcontext(result)
                )
                async with closing as items:
                    async for item in items:
                        try:
                            data = serialize(item)
                        except Exception as exc:
                            await self._fail(
                                sid, StatusCode.INTERNAL, f"ttrpc: error marshaling payload: {exc}"
                            )
                            return
                        if len(data) > limit:
                            await self._fail(
                                sid,
                                StatusCode.RESOURCE_EXHAUSTED,
                                oversize_message(len(data), limit),
                            )
                            return
                        await write(encode_frame(sid, TYPE_DATA, 0, data))
            await self.writer.write(
                encode_frame(sid, TYPE_DATA, FLAG_REMOTE_CLOSED | FLAG_NO_DATA, b"")
            )
        else:
            try:
                payload = serialize(result)
            except Exception as exc:
                await self._fail(
                    sid, StatusCode.INTERNAL, f"ttrpc: error marshaling payload: {exc}"
                )
                return
            await self._reply(sid, payload)
