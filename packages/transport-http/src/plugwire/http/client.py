"""An HTTP/1.1 client for unix sockets and TCP, on httpx.

httpx (through httpcore) runs on asyncio and trio, pools keep-alive connections
and speaks to a unix socket with ``uds=``. This wrapper adds plugwire's limits and
maps every failure to a typed :class:`~plugwire.core.errors.PlugwireError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    MessageTooLargeError,
    PluginTimeoutError,
    ProtocolError,
)
from plugwire.core.transport import Address

from .limits import DEFAULT_LIMITS, Limits
from .messages import Response

__all__ = ["HttpClient"]


class HttpClient:
    """Make HTTP requests to one peer at ``address`` (``unix`` or ``tcp``).

    Failures raise: :class:`ConnectionClosedError` (cannot connect, connection
    dropped), :class:`PluginTimeoutError` (``timeout`` passed),
    :class:`MessageTooLargeError` (response body over ``limits.max_body_size``),
    :class:`ProtocolError` (the peer broke HTTP). Non-2xx statuses are returned,
    not raised: the caller decides what a status means.
    """

    def __init__(
        self,
        address: Address,
        *,
        limits: Limits = DEFAULT_LIMITS,
        timeout: float | None = 30.0,
        peer: str | None = None,
    ) -> None:
        if address.network == "unix":
            transport = httpx.AsyncHTTPTransport(uds=address.address)
            base = "http://unix"
        elif address.network == "tcp":
            transport = httpx.AsyncHTTPTransport()
            base = f"http://{address.address}"
        else:
            raise ConfigError(
                "the HTTP transport connects to unix or tcp",
                step="connect",
                expected="unix or tcp",
                seen=address.network,
            )
        self.address = address
        self.limits = limits
        self.peer = peer or str(address)
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            transport=transport, base_url=base, timeout=timeout, follow_redirects=False
        )
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request and return the whole response."""
        if self._closed:
            raise ClosedError("HTTP client is closed", peer=self.peer, step=f"{method} {path}")
        if len(body) > self.limits.max_body_size:
            raise MessageTooLargeError(
                "request body too large",
                size=len(body),
                limit=self.limits.max_body_size,
                peer=self.peer,
                step=f"{method} {path}",
            )
        step = f"{method} {path}"
        limit = self.limits.max_body_size
        try:
            request = self._client.build_request(
                method,
                path,
                content=body if (body or method not in ("GET", "HEAD")) else None,
                headers=dict(headers or {}),
                timeout=timeout if timeout is not None else self._timeout,
            )
            resp = await self._client.send(request, stream=True)
            try:
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise MessageTooLargeError(
                        "response body too large",
                        size=int(declared),
                        limit=limit,
                        peer=self.peer,
                        step=step,
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise MessageTooLargeError(
                            "response body too large",
                            size=size,
                            limit=limit,
                            peer=self.peer,
                            step=step,
                        )
                    chunks.append(chunk)
            finally:
                await resp.aclose()
        except httpx.TimeoutException as exc:
            raise PluginTimeoutError(
                f"no answer in time: {type(exc).__name__}", peer=self.peer, step=step
            ) from exc
        except (
            httpx.ConnectError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
        ) as exc:
            if (
                isinstance(exc, httpx.RemoteProtocolError)
                and "disconnected" not in str(exc).lower()
            ):
                raise ProtocolError(f"peer broke HTTP: {exc}", peer=self.peer, step=step) from exc
            raise ConnectionClosedError(
                f"connection failed: {exc or type(exc).__name__}", peer=self.peer, step=step
            ) from exc
        except httpx.HTTPError as exc:
            raise ProtocolError(f"HTTP failure: {exc}", peer=self.peer, step=step) from exc
        return Response(resp.status_code, b"".join(chunks), tuple(resp.headers.multi_items()))

    async def post_json(
        self,
        path: str,
        obj: Any,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST ``obj`` as ``application/json``."""
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        hdrs = {"content-type": "application/json", **(headers or {})}
        return await self.request("POST", path, body=body, headers=hdrs, timeout=timeout)

    async def get(self, path: str, *, timeout: float | None = None) -> Response:
        return await self.request("GET", path, timeout=timeout)

    async def aclose(self) -> None:
        """Close pooled connections; later requests raise :class:`ClosedError`."""
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
