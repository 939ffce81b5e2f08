"""One served ttrpc connection: method handlers, call contexts and request handling.

:class:`ServerConnection` mirrors upstream ``serverConn.run``: it reads frames,
dispatches requests to the :class:`MethodHandler` registered for them and writes the
replies. It knows nothing of :class:`~plugwire.ttrpc.server.Server`: the server hands
in its service registry and message limit. See :mod:`plugwire.ttrpc.server` for the
handler conventions and how protocol violations are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc
import attrs

from plugwire.core.errors import ConnectionClosedError, PlugwireError, RemoteError
from plugwire.core.rpc import RpcContext, status_of
from plugwire.core.status import StatusCode

from ._envelope import EnvelopeError, Request, decode_request, encode_response
from ._frame import (
    FLAG_NO_DATA,
    FLAG_REMOTE_CLOSED,
    TYPE_DATA,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    FrameDecoder,
    encode_frame,
)
from ._writer import FrameWriter
from .errors import oversize_message

__all__ = ["MethodHandler", "ServerConnection", "ServerContext"]

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


class ServerContext(RpcContext):
    """What a handler knows about its call: ttrpc's
    :class:`plugwire.core.rpc.ServicerContext`.

    ``method`` (``/svc/Method``), ``peer``, ``metadata`` (key -> values, as sent),
    ``deadline`` (anyio clock, or None), ``stream_id``. Initial and trailing metadata
    set by a servicer are kept but not sent: a ttrpc ``Response`` has no metadata field.
    """

    __slots__ = ("stream_id",)

    def __init__(
        self,
        method: str,
        peer: str,
        metadata: Mapping[str, tuple[str, ...]],
        deadline: float | None,
        stream_id: int,
    ) -> None:
        super().__init__(method, peer, metadata, deadline)
        self.stream_id = stream_id


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


class ServerConnection:
    """State of one served connection (mirrors upstream ``serverConn.run``)."""

    def __init__(
        self,
        services: Mapping[str, Mapping[str, MethodHandler]],
        stream: anyio.abc.ByteStream,
        peer: str,
        *,
        max_message_size: int,
    ) -> None:
        #: the server's registry (live: services registered later are seen)
        self.services = services
        self.max_message_size = max_message_size
        self.stream = stream
        self.peer = peer
        self.writer = FrameWriter(stream, peer)
        self.decoder = FrameDecoder(max_message_size)
        self.last_stream_id = 0
        self.streams: dict[int, _RecvQueue] = {}
        self.nursery: Any = None  # a trio nursery when running on trio
        #: Calls being handled (unary and streams); 0 means idle.
        self.active = 0
        #: Unary calls being handled: replies are batched only when several are
        #: (long-lived streams, e.g. go-plugin's broker and stdio, do not count).
        self.unary = 0
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
        """Run a call's handler (counted in :attr:`active`) as a task of its own."""
        self.active += 1
        self._background(func, *args)

    def _background(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        loop = self.loop
        if loop is not None:
            # The task leaves ``tasks`` itself (_untrack): a done callback would cost
            # every call one more event-loop iteration.
            self.tasks.add(loop.create_task(func(*args)))
        else:
            assert self.nursery is not None
            self.nursery.start_soon(func, *args)

    async def run(self) -> None:
        try:
            if self.loop is not None:
                deliver_to = getattr(self.stream, "deliver_to", None)
                if deliver_to is not None:
                    await self._callback_loop(deliver_to)
                else:
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

    async def _callback_loop(self, deliver_to: Callable[..., None]) -> None:
        """asyncio socket streams: frames are dispatched from the event loop's
        data callback (no read-loop task to wake per request); wait for the end."""
        assert self.loop is not None
        ended: asyncio.Future[None] = self.loop.create_future()
        feed = self.decoder.feed
        handle = self.handle

        def on_data(data: bytes) -> None:
            for frame in feed(data):
                status = handle(*frame)
                if status is not None:
                    self._background(self._write_quietly, status)

        def on_end() -> None:
            if not ended.done():
                ended.set_result(None)

        deliver_to(on_data, on_end)
        await ended
        if self.decoder.pending:
            log.debug("ttrpc: %s closed mid-frame (%d bytes)", self.peer, self.decoder.pending)

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
                status = handle(*frame)
                if status is not None:
                    await self._write_quietly(status)

    def _status(self, sid: int, code: int, message: str) -> bytes | None:
        """Answer ``sid`` with an error status without waiting if the writer takes it
        now; else return the frame for the caller to write (in order)."""
        frame = encode_frame(sid, TYPE_RESPONSE, 0, encode_response(None, code, message))
        return None if self.writer.post(frame) else frame

    def _untrack(self) -> None:
        """The running handler task is done (asyncio): forget it."""
        if self.loop is not None:
            self.tasks.discard(asyncio.current_task(self.loop))

    async def _write_quietly(self, frame: bytes) -> None:
        try:
            with contextlib.suppress(ConnectionClosedError):
                await self.writer.write(frame)
        finally:
            self._untrack()

    def handle(self, sid: int, typ: int, flags: int, data: bytes, oversized: int) -> bytes | None:
        """Dispatch one received frame (never blocks: handlers run as tasks). Returns
        an error status frame the writer could not take at once (write it next)."""
        if oversized:
            return self._status(
                sid,
                StatusCode.RESOURCE_EXHAUSTED,
                oversize_message(oversized, self.max_message_size),
            )
        if sid % 2 != 1:
            return self._status(
                sid,
                StatusCode.INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams",
            )
        if typ == TYPE_REQUEST:
            if sid <= self.last_stream_id:
                return self._status(
                    sid,
                    StatusCode.INVALID_ARGUMENT,
                    "StreamID cannot be re-used and must increment",
                )
            self.last_stream_id = sid
            try:
                req = decode_request(data)
            except EnvelopeError as exc:
                return self._status(
                    sid, StatusCode.INVALID_ARGUMENT, f"unmarshal request error: {exc}"
                )
            methods = self.services.get(req.service)
            if methods is None:
                return self._status(sid, StatusCode.UNIMPLEMENTED, f"service {req.service}")
            handler = methods.get(req.method)
            if handler is None:
                return self._status(sid, StatusCode.UNIMPLEMENTED, f"method {req.method}")
            if not handler.client_streaming and not handler.server_streaming:
                self.unary += 1
                self.spawn(self.run_unary, sid, handler, req)
                return None
            queue = _RecvQueue()
            if req.payload is not None or not handler.client_streaming:
                queue.push(req.payload or b"")
            if not handler.client_streaming:
                queue.close()
            self.streams[sid] = queue
            self.spawn(self.run_stream, sid, handler, req, queue)
            return None
        if typ == TYPE_DATA:
            queue_or_none = self.streams.get(sid)
            if queue_or_none is None:
                return self._status(
                    sid, StatusCode.INVALID_ARGUMENT, "StreamID is no longer active"
                )
            if not flags & FLAG_NO_DATA:
                err = queue_or_none.push(data)
                if err is not None:
                    return self._status(
                        sid, StatusCode.INVALID_ARGUMENT, f"data handling error: {err}"
                    )
            if flags & FLAG_REMOTE_CLOSED:
                queue_or_none.close()
                if data:
                    return self._status(
                        sid, StatusCode.INVALID_ARGUMENT, "data close message cannot include data"
                    )
            return None
        log.debug(
            "ttrpc: ignoring frame of unknown type %d on stream %d from %s", typ, sid, self.peer
        )
        return None

    def _context(self, sid: int, req: Request) -> ServerContext:
        # as Go: any non-zero timeout is a deadline (a negative one has already passed)
        deadline = anyio.current_time() + req.timeout_nano / 1e9 if req.timeout_nano else None
        md = _metadata_dict(req.metadata) if req.metadata else {}
        return ServerContext(f"/{req.service}/{req.method}", self.peer, md, deadline, sid)

    async def _reply(self, sid: int, payload: bytes | None) -> None:
        if payload is not None and len(payload) > self.max_message_size:
            await self._fail(
                sid,
                StatusCode.RESOURCE_EXHAUSTED,
                oversize_message(len(payload), self.max_message_size),
            )
            return
        await self.writer.write(
            encode_frame(sid, TYPE_RESPONSE, 0, encode_response(payload)), self.unary > 1
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
            # a code set with context.set_code (grpcio-tools' generated defaults),
            # NotImplementedError (UNIMPLEMENTED), or UNKNOWN with the text
            code, message, details = status_of(exc, ctx)
            if code == StatusCode.UNKNOWN:
                log.warning("ttrpc: handler %s raised", ctx.method, exc_info=exc)
            await self._fail(sid, code, message, details)

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
            if ctx._code:  # set with context.set_code and returned
                await self._fail(sid, ctx._code, ctx._details)
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
        except BaseException:
            ctx._finish(cancelled=True)  # the connection ended under the call
            raise
        finally:
            ctx._finish()  # done callbacks run once the reply (or status) is out
            self.active -= 1
            self.unary -= 1
            self._untrack()

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
            except BaseException:
                ctx._finish(cancelled=True)  # the connection ended under the call
                raise
        finally:
            ctx._finish()
            self.active -= 1
            self.streams.pop(sid, None)
            queue.close()
            self._untrack()

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
                limit = self.max_message_size
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
