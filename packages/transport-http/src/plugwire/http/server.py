"""An HTTP/1.1 server on anyio, built on h11.

h11 is a sans-I/O HTTP/1.1 state machine: it parses and serialises, and plugwire
owns the sockets through anyio. That is what makes the same server run on asyncio
and trio, listen on unix sockets as easily as TCP, and enforce exact header and
body limits, with no second event loop, worker model or ASGI layer in between.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import h11

from plugwire.core._unix import create_unix_listener
from plugwire.core.errors import ConfigError
from plugwire.core.transport import Address

from .limits import DEFAULT_LIMITS, Limits
from .messages import Request, Response

__all__ = ["Handler", "HttpServer", "listen"]

#: An application: one request in, one response out. An exception becomes a
#: ``500`` response; the connection and the server keep running.
Handler = Callable[[Request], Awaitable[Response]]

_log = logging.getLogger("plugwire.http.server")
_READ = 65536


def _split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            "TCP address must be host:port", step="listen", expected="host:port", seen=address
        )
    return host.strip("[]") or "127.0.0.1", int(port)


@contextlib.asynccontextmanager
async def listen(
    address: Address,
) -> AsyncIterator[tuple[anyio.abc.Listener[anyio.abc.SocketStream], Address]]:
    """Open a listener at ``address`` (``unix`` or ``tcp``) and yield it with the
    bound address. A stale unix socket file at the path is replaced (a regular file
    there is an error); the socket file is removed on exit."""
    if address.network == "unix":
        path = address.address
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise ConfigError(
                    "refusing to replace a non-socket file",
                    step="listen",
                    expected="a free path or a stale socket",
                    seen=path,
                )
            os.unlink(path)
        listener: anyio.abc.Listener[anyio.abc.SocketStream] = await create_unix_listener(path)
        try:
            yield listener, address
        finally:
            await listener.aclose()
            with contextlib.suppress(OSError):
                os.unlink(path)
    elif address.network == "tcp":
        host, port = _split_host_port(address.address)
        tcp = await anyio.create_tcp_listener(local_host=host, local_port=port)
        sockname = tcp.extra(anyio.abc.SocketAttribute.local_address)
        assert isinstance(sockname, tuple)
        bound_host, bound_port = sockname[0], sockname[1]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        try:
            yield tcp, Address("tcp", f"{shown}:{bound_port}")
        finally:
            await tcp.aclose()
    else:
        raise ConfigError(
            "the HTTP transport listens on unix or tcp",
            step="listen",
            expected="unix or tcp",
            seen=address.network,
        )


class _TooLarge(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


class HttpServer:
    """Serve one :data:`Handler` over HTTP/1.1 with keep-alive.

    Every request body is read in full (bounded by ``limits.max_body_size``) before
    the handler runs. Malformed HTTP gets ``400``, an oversized head ``431``, an
    oversized body ``413``, each followed by closing that connection only. A
    :class:`Response` with ``stream`` set is sent with chunked transfer encoding.

    With ``watch_disconnect`` the connection is watched while a request is answered:
    when the client closes it, the request's ``on_disconnect`` callbacks run and the
    handler (or the streamed body) is cancelled.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits = DEFAULT_LIMITS,
        name: str = "http",
        watch_disconnect: bool = False,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.name = name
        self.watch_disconnect = watch_disconnect
        self.connections = 0

    @contextlib.asynccontextmanager
    async def serve(self, address: Address) -> AsyncIterator[Address]:
        """Listen at ``address`` and serve until the block exits; yields the bound
        address (TCP port 0 resolved)."""
        async with listen(address) as (listener, bound), anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self.handle_connection, tg)
            try:
                yield bound
            finally:
                tg.cancel_scope.cancel()

    async def handle_connection(self, stream: anyio.abc.ByteStream) -> None:
        """Serve requests on one connection until either side closes it."""
        self.connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_size)
        async with stream:
            try:
                while await self._one_exchange(conn, stream):
                    conn.start_next_cycle()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
                return
            except h11.LocalProtocolError as exc:  # pragma: no cover - our own bug
                _log.error("%s: HTTP state error: %s", self.name, exc)

    async def _next_event(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, deadline: list[float]
    ) -> object:
        """The next h11 event. ``deadline`` is empty until the request's first bytes
        arrive, then holds when the whole request must have arrived."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                if not deadline:
                    data = await stream.receive(_READ)
                    deadline.append(anyio.current_time() + self.limits.request_timeout)
                else:
                    with anyio.fail_after(max(0.0, deadline[0] - anyio.current_time())):
                        data = await stream.receive(_READ)
            except TimeoutError:
                raise _TooLarge(
                    408, f"request not received within {self.limits.request_timeout} s"
                ) from None
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                data = b""
            conn.receive_data(data)

    async def _send(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, response: Response
    ) -> None:
        if response.stream is not None:
            await self._send_streamed(conn, stream, response)
            return
        headers = [
            (k, v) for k, v in response.headers if k not in ("content-length", "transfer-encoding")
        ]
        headers.append(("content-length", str(len(response.body))))
        out = conn.send(h11.Response(status_code=response.status, headers=headers))
        out = (
            (out or b"") + (conn.send(h11.Data(data=response.body)) or b"")
            if response.body
            else out
        )
        out = (out or b"") + (conn.send(h11.EndOfMessage()) or b"")
        await stream.send(out)

    async def _send_streamed(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, response: Response
    ) -> None:
        assert response.stream is not None
        headers = [
            (k, v) for k, v in response.headers if k not in ("content-length", "transfer-encoding")
        ]
        await stream.send(conn.send(h11.Response(status_code=response.status, headers=headers)))

        async def write(chunk: bytes) -> None:
            if chunk:
                await stream.send(conn.send(h11.Data(data=chunk)) or b"")

        try:
            await response.stream(write)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
            raise
        except Exception as exc:
            # the head is out: all that is left is to cut the body short
            _log.exception("%s: streamed body failed: %s", self.name, exc)
            raise anyio.BrokenResourceError from exc
        await stream.send(conn.send(h11.EndOfMessage()) or b"")

    async def _refuse(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, status: int, reason: str
    ) -> None:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                resp = Response.text(reason + "\n", status)
                headers = [
                    *resp.headers,
                    ("connection", "close"),
                    ("content-length", str(len(resp.body))),
                ]
                data = conn.send(h11.Response(status_code=status, headers=headers)) or b""
                data += conn.send(h11.Data(data=resp.body)) or b""
                data += conn.send(h11.EndOfMessage()) or b""
                with contextlib.suppress(
                    anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError
                ):
                    await stream.send(data)

    async def _one_exchange(self, conn: h11.Connection, stream: anyio.abc.ByteStream) -> bool:
        deadline: list[float] = []
        try:
            event = await self._next_event(conn, stream, deadline)
            if isinstance(event, h11.ConnectionClosed):
                return False
            assert isinstance(event, h11.Request), event
            head = len(event.method) + len(event.target) + 12
            head += sum(len(k) + len(v) + 4 for k, v in event.headers)
            if head > self.limits.max_header_size:
                # h11 bounds only a head still arriving; one read can hold a whole one.
                raise _TooLarge(
                    431, f"request head of {head} bytes exceeds {self.limits.max_header_size}"
                )
            length = None
            for name, value in event.headers:
                if name == b"content-length":
                    length = int(value)
            if length is not None and length > self.limits.max_body_size:
                raise _TooLarge(
                    413,
                    f"request body of {length} bytes exceeds the limit "
                    f"of {self.limits.max_body_size}",
                )
            chunks: list[bytes] = []
            size = 0
            while True:
                part = await self._next_event(conn, stream, deadline)
                if isinstance(part, h11.Data):
                    size += len(part.data)
                    if size > self.limits.max_body_size:
                        raise _TooLarge(
                            413,
                            f"request body exceeds the limit of {self.limits.max_body_size} bytes",
                        )
                    chunks.append(bytes(part.data))
                elif isinstance(part, h11.EndOfMessage):
                    break
                elif isinstance(part, h11.ConnectionClosed):
                    return False
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            reason = str(exc) or "bad request"
            if status == 400 and "exceeds" in reason.lower():  # pragma: no cover - defensive
                status = 431
            await self._refuse(conn, stream, status, reason)
            return False
        except _TooLarge as exc:
            await self._refuse(conn, stream, exc.status, exc.reason)
            return False
        request = Request(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("utf-8", "replace"),
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers),
            body=b"".join(chunks),
        )
        if self.watch_disconnect:
            if not await self._answer_watched(conn, stream, request):
                return False
        else:
            response = await self._respond(request)
            await self._send(conn, stream, response)
            if response.then is not None:
                await response.then()
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _respond(self, request: Request) -> Response:
        try:
            return await self.handler(request)
        except Exception as exc:
            _log.exception("%s: handler failed on %s %s", self.name, request.method, request.path)
            return Response.text(f"internal error: {type(exc).__name__}: {exc}\n", 500)

    async def _answer_watched(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, request: Request
    ) -> bool:
        """Answer ``request`` while watching for the client to go away; False when it
        did (the handler was cancelled)."""
        gone = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal gone
                try:
                    data = await stream.receive(_READ)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    data = b""
                except OSError:
                    data = b""
                if data:  # the next request, pipelined: keep it for the next cycle
                    conn.receive_data(data)
                    return
                gone = True
                for callback in request.on_disconnect:
                    callback()
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            response = await self._respond(request)
            try:
                await self._send(conn, stream, response)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
                gone = True  # the client left while the reply was being written
            tg.cancel_scope.cancel()
        if gone:
            return False
        if response.then is not None:
            await response.then()
        return True
