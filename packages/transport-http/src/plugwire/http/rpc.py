"""Servicers over HTTP/1.1: the ``http`` side of :mod:`plugwire.core.rpc`.

HTTP carries unary calls and server streaming; client and bidirectional streaming
are not offered (HTTP/1.1 request bodies are read whole before the handler runs).

The wire, one request per call:

- request: ``POST /pkg.Service/Method``, ``content-type: application/x-protobuf``,
  body the serialized request; metadata as ``plugwire-md-<key>: <value>`` headers
  (keys lower-case, one header per value); the deadline as ``plugwire-timeout:
  <seconds>``.
- unary reply: ``200``, body the serialized reply; initial metadata as
  ``plugwire-md-*`` headers, trailing metadata as ``plugwire-trailer-*`` headers.
- unary error: the HTTP status of the gRPC code (grpc-gateway's mapping), a JSON
  body ``{"code": int, "message": str, "details": [base64 of each encoded Any]}`` and
  the metadata headers as above.
- server streaming: ``200``, ``content-type: application/x-plugwire-stream``,
  **chunked** transfer encoding (not SSE: frames carry binary protobuf). The body is
  a sequence of frames ``flag (1 byte) | length (4 bytes, big-endian) | data``:
  ``0x00`` a reply message, ``0x01`` the initial metadata (JSON ``[[key, value],
  ...]``), ``0x80`` the end of the call (JSON ``{"code", "message", "details",
  "trailing"}``), always last. A body that ends without the ``0x80`` frame means
  the server went away: the client raises
  :class:`~plugwire.core.errors.ConnectionClosedError`.

A request over the size limit is refused with ``413`` (RESOURCE_EXHAUSTED). The
server watches each connection while answering: a client that disconnects (a
cancelled call) cancels the servicer, whose ``context.cancelled()`` is then True.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx

from plugwire.core.errors import (
    ConnectionClosedError,
    MessageTooLargeError,
    PluginTimeoutError,
    ProtocolError,
)
from plugwire.core.rpc import (
    Metadata,
    RpcContext,
    RpcError,
    RpcMethod,
    Service,
    serve_call,
    status_of,
)
from plugwire.core.status import StatusCode

from .client import HttpClient
from .messages import Request, Response

__all__ = ["RpcDispatcher", "http_status"]

MD_PREFIX = "plugwire-md-"
TRAILER_PREFIX = "plugwire-trailer-"
TIMEOUT_HEADER = "plugwire-timeout"
STREAM_TYPE = "application/x-plugwire-stream"
PROTO_TYPE = "application/x-protobuf"

FRAME_MESSAGE = 0x00
FRAME_HEADERS = 0x01
FRAME_END = 0x80
_HEAD = struct.Struct(">BI")

# gRPC code -> HTTP status, as in grpc-gateway's mapping.
_HTTP_STATUS = {
    StatusCode.CANCELLED: 499,
    StatusCode.UNKNOWN: 500,
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.DEADLINE_EXCEEDED: 504,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.FAILED_PRECONDITION: 400,
    StatusCode.ABORTED: 409,
    StatusCode.OUT_OF_RANGE: 400,
    StatusCode.UNIMPLEMENTED: 501,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
    StatusCode.DATA_LOSS: 500,
    StatusCode.UNAUTHENTICATED: 401,
}


def http_status(code: int) -> int:
    """The HTTP status answering gRPC status ``code``."""
    try:
        return _HTTP_STATUS.get(StatusCode(code), 500)
    except ValueError:
        return 500


def _md_headers(prefix: str, metadata: Metadata) -> list[tuple[str, str]]:
    return [(f"{prefix}{k.lower()}", v) for k, v in metadata]


def _md_from_headers(prefix: str, headers: Sequence[tuple[str, str]]) -> Metadata:
    return tuple((k[len(prefix) :], v) for k, v in headers if k.startswith(prefix))


def _status_doc(
    code: int, message: str, details: Sequence[bytes], trailing: Metadata = ()
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": int(code),
        "message": message,
        "details": [base64.b64encode(d).decode() for d in details],
    }
    if trailing:
        doc["trailing"] = [list(kv) for kv in trailing]
    return doc


def _frame(flag: int, data: bytes) -> bytes:
    return _HEAD.pack(flag, len(data)) + data


class RpcDispatcher:
    """The :data:`~plugwire.http.server.Handler` serving bound servicers."""

    def __init__(self, services: Sequence[Service], *, max_message_size: int | None) -> None:
        self.methods: dict[str, tuple[RpcMethod, Callable[..., Any]]] = {}
        for svc in services:
            for m in svc.spec.methods.values():
                self.methods[m.full_name] = (m, svc.handler(m))
        self.max_message_size = max_message_size

    def _context(self, request: Request, method: RpcMethod) -> RpcContext:
        import anyio

        md: dict[str, tuple[str, ...]] = {}
        for k, v in request.headers:
            if k.startswith(MD_PREFIX):
                key = k[len(MD_PREFIX) :]
                md[key] = (*md.get(key, ()), v)
        deadline = None
        timeout = request.header(TIMEOUT_HEADER)
        if timeout is not None:
            try:
                deadline = anyio.current_time() + float(timeout)
            except ValueError:
                deadline = None
        peer = request.header("x-plugwire-peer") or "http client"
        ctx = RpcContext(method.full_name, peer, md, deadline)
        request.on_disconnect.append(lambda: setattr(ctx, "_cancelled", True))
        return ctx

    def _error(
        self, code: int, message: str, details: Sequence[bytes] = (), headers: Metadata = ()
    ) -> Response:
        body = json.dumps(_status_doc(code, message, details)).encode()
        return Response(http_status(code), body, (("content-type", "application/json"), *headers))

    async def __call__(self, request: Request) -> Response:
        entry = self.methods.get(request.path)
        if entry is None:
            return self._error(StatusCode.UNIMPLEMENTED, f"method {request.path} not found")
        if request.method != "POST":
            return self._error(StatusCode.UNIMPLEMENTED, f"HTTP {request.method} not allowed")
        method, func = entry
        if method.client_streaming:
            return self._error(
                StatusCode.UNIMPLEMENTED,
                f"{method.full_name}: the http transport carries no client streaming",
            )
        ctx = self._context(request, method)
        if method.server_streaming:
            return Response(
                200,
                headers=(("content-type", STREAM_TYPE),),
                stream=lambda write: self._stream(method, func, ctx, request.body, write),
            )
        replies: list[bytes] = []

        async def keep(data: bytes) -> None:
            replies.append(data)

        try:
            await serve_call(
                method, func, ctx, request.body, keep, max_message_size=self.max_message_size
            )
        except Exception as exc:
            code, message, details = status_of(exc, ctx)
            trailing = ctx.trailing_metadata_out
            if isinstance(exc, RpcError) and exc.trailing_metadata:
                trailing = exc.trailing_metadata
            headers = _md_headers(MD_PREFIX, ctx.initial_metadata_out) + _md_headers(
                TRAILER_PREFIX, trailing
            )
            return self._error(code, message, details, tuple(headers))
        finally:
            ctx._finish()
        headers = [("content-type", PROTO_TYPE)]
        headers += _md_headers(MD_PREFIX, ctx.initial_metadata_out)
        headers += _md_headers(TRAILER_PREFIX, ctx.trailing_metadata_out)
        return Response(200, replies[0] if replies else b"", tuple(headers))

    async def _stream(
        self,
        method: RpcMethod,
        func: Callable[..., Any],
        ctx: RpcContext,
        body: bytes,
        write: Callable[[bytes], Any],
    ) -> None:
        sent_md = False

        async def headers() -> None:
            nonlocal sent_md
            if not sent_md:
                sent_md = True
                doc = [list(kv) for kv in ctx.initial_metadata_out]
                await write(_frame(FRAME_HEADERS, json.dumps(doc).encode()))

        async def emit(data: bytes) -> None:
            await headers()
            await write(_frame(FRAME_MESSAGE, data))

        try:
            await serve_call(method, func, ctx, body, emit, max_message_size=self.max_message_size)
            end = _status_doc(0, "", (), ctx.trailing_metadata_out)
        except Exception as exc:
            code, message, details = status_of(exc, ctx)
            trailing = ctx.trailing_metadata_out
            if isinstance(exc, RpcError) and exc.trailing_metadata:
                trailing = exc.trailing_metadata
            end = _status_doc(code, message, details, trailing)
        finally:
            ctx._finish()
        await headers()
        await write(_frame(FRAME_END, json.dumps(end).encode()))


# -- client ---------------------------------------------------------------------------------


def _rpc_error_from(
    status: int, body: bytes, headers: Sequence[tuple[str, str]], peer: str, step: str
) -> RpcError:
    initial = _md_from_headers(MD_PREFIX, headers)
    trailing = _md_from_headers(TRAILER_PREFIX, headers)
    if status == 413:
        return RpcError(
            body.decode("utf-8", "replace").strip() or "request too large",
            code=StatusCode.RESOURCE_EXHAUSTED,
            peer=peer,
            step=step,
        )
    try:
        doc = json.loads(body)
        code, message = int(doc["code"]), str(doc["message"])
        details = [base64.b64decode(d) for d in doc.get("details", ())]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(
            "error reply is not a plugwire status document",
            peer=peer,
            step=step,
            expected='{"code": int, "message": str, "details": [base64]}',
            seen=f"HTTP {status}: {body[:200]!r}",
        ) from exc
    return RpcError(
        message,
        code=code,
        details=details,
        trailing_metadata=trailing,
        initial_metadata=initial,
        peer=peer,
        step=step,
    )


def _request_headers(metadata: Metadata, timeout: float | None) -> list[tuple[str, str]]:
    headers = [("content-type", PROTO_TYPE)]
    headers += _md_headers(MD_PREFIX, metadata)
    if timeout is not None:
        headers.append((TIMEOUT_HEADER, f"{max(timeout, 0.0):.6f}"))
    return headers


class _HttpStream:
    """A server-streaming call: the request goes at ``close_send``; the reply body is
    read frame by frame."""

    def __init__(
        self, invoker: HttpInvoker, method: RpcMethod, timeout: float | None, metadata: Metadata
    ) -> None:
        self._invoker = invoker
        self._method = method
        self._timeout = timeout
        self._metadata = metadata
        self._payload = b""
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._buffer = b""
        self._ended = False
        self.initial_metadata: Metadata = ()
        self.trailing_metadata: Metadata = ()

    async def send(self, data: bytes) -> None:
        self._payload = data

    async def close_send(self) -> None:
        await self._open()

    async def _open(self) -> None:
        if self._response is not None:
            return
        inv = self._invoker
        step = self._method.full_name
        with inv.errors(step):
            request = inv.client.build_request(
                "POST",
                step,
                content=self._payload,
                headers=_request_headers(self._metadata, self._timeout),
                timeout=None,
            )
            response = await inv.client.send(request, stream=True)
        self._response = response
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            STREAM_TYPE
        ):
            with inv.errors(step):
                body = await response.aread()
            await response.aclose()
            self._ended = True
            raise _rpc_error_from(
                response.status_code, body, response.headers.multi_items(), inv.peer, step
            )
        self._chunks = response.aiter_raw()

    async def _read(self, n: int) -> bytes | None:
        assert self._chunks is not None
        while len(self._buffer) < n:
            with self._invoker.errors(self._method.full_name):
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    async def recv(self) -> bytes | None:
        await self._open()
        inv = self._invoker
        step = self._method.full_name
        limit = inv.max_message_size
        while not self._ended:
            head = await self._read(_HEAD.size)
            if head is None:
                self._ended = True
                raise ConnectionClosedError(
                    "the server ended the stream without a status", peer=inv.peer, step=step
                )
            flag, length = _HEAD.unpack(head)
            if length > limit:
                self._ended = True
                await self.aclose()
                raise MessageTooLargeError(
                    "streamed reply too large", size=length, limit=limit, peer=inv.peer, step=step
                )
            data = await self._read(length)
            if data is None:
                self._ended = True
                raise ConnectionClosedError(
                    "the server ended the stream mid-frame", peer=inv.peer, step=step
                )
            if flag == FRAME_MESSAGE:
                return data
            if flag == FRAME_HEADERS:
                self.initial_metadata = tuple((str(k), str(v)) for k, v in json.loads(data))
                continue
            if flag != FRAME_END:
                raise ProtocolError(
                    "unknown stream frame",
                    peer=inv.peer,
                    step=step,
                    expected="flag 0x00, 0x01 or 0x80",
                    seen=flag,
                )
            self._ended = True
            doc = json.loads(data)
            self.trailing_metadata = tuple((str(k), str(v)) for k, v in doc.get("trailing", ()))
            # read the body to its end so that the connection goes back to the pool
            with contextlib.suppress(ConnectionClosedError):
                while await self._read(1) is not None:
                    pass
            await self.aclose()
            if doc["code"]:
                raise RpcError(
                    str(doc["message"]),
                    code=int(doc["code"]),
                    details=[base64.b64decode(d) for d in doc.get("details", ())],
                    trailing_metadata=self.trailing_metadata,
                    initial_metadata=self.initial_metadata,
                    peer=inv.peer,
                    step=step,
                )
        return None

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()


class HttpInvoker:
    """The http backend of a :class:`plugwire.core.rpc.Stub`."""

    def __init__(self, client: HttpClient, *, owns: bool) -> None:
        self._http = client
        self.client: httpx.AsyncClient = client._client
        self.peer = client.peer
        self.max_message_size = client.limits.max_body_size
        self._owns = owns

    def errors(self, step: str) -> Any:
        """A context manager mapping httpx failures to plugwire errors."""
        return _map_httpx(self.peer, step)

    async def open(
        self, method: RpcMethod, *, timeout: float | None, metadata: Metadata
    ) -> _HttpStream:
        if method.client_streaming:
            raise RpcError(
                f"{method.full_name}: the http transport carries no client streaming",
                code=StatusCode.UNIMPLEMENTED,
                peer=self.peer,
                step=method.full_name,
            )
        return _HttpStream(self, method, timeout, metadata)

    async def unary(
        self, method: RpcMethod, request: bytes, *, timeout: float | None, metadata: Metadata
    ) -> tuple[bytes, Metadata, Metadata]:
        step = method.full_name
        resp = await self._post(step, request, timeout, metadata)
        headers = resp.headers
        if resp.status == 200:
            return (
                resp.body,
                _md_from_headers(MD_PREFIX, headers),
                _md_from_headers(TRAILER_PREFIX, headers),
            )
        raise _rpc_error_from(resp.status, resp.body, headers, self.peer, step)

    async def _post(
        self, step: str, request: bytes, timeout: float | None, metadata: Metadata
    ) -> Response:
        limit = self.max_message_size
        with self.errors(step):
            req = self.client.build_request(
                "POST",
                step,
                content=request,
                headers=_request_headers(metadata, timeout),
                timeout=None,
            )
            resp = await self.client.send(req, stream=True)
            try:
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise MessageTooLargeError(
                            "response body too large",
                            size=len(body),
                            limit=limit,
                            peer=self.peer,
                            step=step,
                        )
            finally:
                await resp.aclose()
        return Response(resp.status_code, body, tuple(resp.headers.multi_items()))

    async def aclose(self) -> None:
        if self._owns:
            await self._http.aclose()


class _map_httpx:
    def __init__(self, peer: str, step: str) -> None:
        self.peer = peer
        self.step = step

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> None:
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return
        if isinstance(exc, httpx.TimeoutException):
            raise PluginTimeoutError(
                f"no answer in time: {type(exc).__name__}", peer=self.peer, step=self.step
            ) from exc
        if isinstance(
            exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError
        ):
            raise ConnectionClosedError(
                f"connection failed: {exc or type(exc).__name__}", peer=self.peer, step=self.step
            ) from exc
        raise ProtocolError(f"HTTP failure: {exc}", peer=self.peer, step=self.step) from exc
