"""``HttpTransport``: the core byte-level :class:`~plugwire.core.transport.Transport`
over HTTP/1.1.

A unary call ``/pkg.Service/Method`` is ``POST /pkg.Service/Method`` with the
payload as an ``application/octet-stream`` body; metadata travels as
``plugwire-md-<key>`` headers. Success is ``200`` with the reply bytes. An error
is a non-2xx status with a JSON body ``{"code": <gRPC code>, "message": ...}``
(unknown method: ``404``, code UNIMPLEMENTED).

RPC (servicers and stubs, unary and server streaming): see :mod:`plugwire.http.rpc`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar

from plugwire.core.errors import ProtocolError, RemoteError
from plugwire.core.rpc import Service
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address, Channel, Transport, UnaryHandler

from .client import HttpClient
from .limits import DEFAULT_LIMITS, Limits
from .messages import Request, Response
from .rpc import _HTTP_STATUS, HttpInvoker, RpcDispatcher
from .server import HttpServer

__all__ = ["HttpChannel", "HttpTransport"]

_MD_PREFIX = "plugwire-md-"


def _error(code: int, message: str, status: int | None = None) -> Response:
    return Response.json(
        {"code": int(code), "message": message}, status or _HTTP_STATUS.get(StatusCode(code), 500)
    )


class _Dispatcher:
    def __init__(self, handlers: Mapping[str, UnaryHandler]) -> None:
        self.handlers = dict(handlers)

    async def __call__(self, request: Request) -> Response:
        handler = self.handlers.get(request.path)
        if handler is None:
            return _error(StatusCode.UNIMPLEMENTED, f"method {request.path} not found", 404)
        if request.method != "POST":
            return _error(StatusCode.UNIMPLEMENTED, f"method {request.method} not allowed", 405)
        metadata = {k[len(_MD_PREFIX) :]: v for k, v in request.headers if k.startswith(_MD_PREFIX)}
        try:
            reply = await handler(request.body, metadata)
        except RemoteError as exc:
            return _error(exc.code, exc.message)
        except Exception as exc:
            return _error(StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")
        return Response(200, reply, (("content-type", "application/octet-stream"),))


class HttpChannel(Channel):
    """A client channel making unary calls as HTTP POSTs."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        headers = {"content-type": "application/octet-stream"}
        headers.update({f"{_MD_PREFIX}{k.lower()}": v for k, v in (metadata or {}).items()})
        resp = await self.client.request(
            "POST", method, body=payload, headers=headers, timeout=timeout
        )
        if resp.status == 200:
            return resp.body
        try:
            doc = json.loads(resp.body)
            code, message = int(doc["code"]), str(doc["message"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise ProtocolError(
                "error reply is not a plugwire error document",
                peer=self.client.peer,
                step=method,
                expected='{"code": int, "message": str}',
                seen=f"HTTP {resp.status}: {resp.body[:200]!r}",
            ) from None
        raise RemoteError(message, code=code, peer=self.client.peer, step=method)

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpTransport(Transport):
    """The ``http`` transport: unary calls as HTTP/1.1 POSTs over unix or TCP."""

    name = "http"
    rpc_unsupported: ClassVar[Mapping[str, str]] = {
        "stream_unary": "HTTP/1.1 request bodies are read whole before the servicer runs: "
        "no client streaming",
        "stream_stream": "HTTP/1.1 request bodies are read whole before the servicer runs: "
        "no bidirectional streaming",
    }

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, timeout: float | None = 30.0) -> None:
        self.limits = limits
        self.timeout = timeout

    def serve_bytes(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    def serve_rpc(
        self, address: Address, services: Sequence[Service], *, max_message_size: int | None
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve_rpc(address, services, max_message_size)

    @contextlib.asynccontextmanager
    async def _serve_rpc(
        self, address: Address, services: Sequence[Service], max_message_size: int | None
    ) -> AsyncIterator[Address]:
        limits = self.limits
        if max_message_size is not None:
            limits = Limits(max_body_size=max_message_size, max_header_size=limits.max_header_size)
        dispatcher = RpcDispatcher(services, max_message_size=max_message_size)
        server = HttpServer(
            dispatcher, limits=limits, name=f"http rpc {address}", watch_disconnect=True
        )
        async with server.serve(address) as bound:
            yield bound

    async def invoker(self, target: Channel | Address) -> HttpInvoker:
        if isinstance(target, HttpChannel):
            return HttpInvoker(target.client, owns=False)
        if isinstance(target, Address):
            return HttpInvoker(HttpClient(target, limits=self.limits, timeout=None), owns=True)
        from plugwire.core.errors import ConfigError

        raise ConfigError("not an http channel", step="stub", seen=type(target).__name__)

    @contextlib.asynccontextmanager
    async def _serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> AsyncIterator[Address]:
        server = HttpServer(_Dispatcher(handlers), limits=self.limits, name=f"http {address}")
        async with server.serve(address) as bound:
            yield bound

    async def connect(self, address: Address) -> Channel:
        return HttpChannel(HttpClient(address, limits=self.limits, timeout=self.timeout))
