"""Broker multiplexing over yamux (``PLUGIN_MULTIPLEX_GRPC``), as go-plugin's grpcmux.

The host is the yamux client, the plugin the yamux server, over the plugin's one
listener connection. gRPC (and TLS, when set up) runs inside each yamux stream.
grpc.aio cannot run over a custom stream, so streams are spliced to private unix
sockets (the same design as :mod:`._yamux_bridge`, with asyncio streams on the local
side and no task cancellation on the data path, see :class:`_AioStream`):

* plugin: the public listener accepts the host's single connection; a
  :class:`_Router` sends each stream to the main gRPC server, or to the broker server
  of an id when a knock for it is pending;
* host: the main channel dials through a :class:`_DialBridge` (each gRPC connect
  opens a stream); broker servers the host accepts get streams through a
  :class:`_Router` with no default target;
* a broker dial sends ``knock{knock: true}`` on the broker stream and needs
  ``knock{knock: true, ack: true, error: ""}`` back (within 5 s) before it opens the
  stream; the accepting side answers after routing the next stream to the id.

Each yamux object lives in its own task (anyio task groups must be left by the task
that entered them), so any task can close it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

import grpc
from plugwire.core.errors import ClosedError, ConfigError, ConnectionClosedError, ProtocolError
from plugwire.core.transport import Address

from . import yamux
from ._generated.plugin import grpc_broker_pb2
from ._listen import SERVER_OPTIONS, port_range
from ._wire import Listening, open_channel, start_server
from .mtls import TLSConfig

if TYPE_CHECKING:
    from .broker import BrokerServer, GrpcBroker, Register

__all__ = ["ClientMuxer", "ServerMuxer", "client_muxer", "server_muxer"]

_log = logging.getLogger("plugwire.grpc.mux")
KNOCK_TIMEOUT = 5.0
_CHUNK = 256 * 1024


class _Held:
    """Keeps ``async with cm`` open in a task of its own until :meth:`aclose`."""

    def __init__(
        self, body: Callable[[asyncio.Event, asyncio.Future[Any]], Awaitable[None]]
    ) -> None:
        self._stop = asyncio.Event()
        self._entered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._run(body))

    async def _run(
        self, body: Callable[[asyncio.Event, asyncio.Future[Any]], Awaitable[None]]
    ) -> None:
        try:
            await body(self._stop, self._entered)
        except BaseException as exc:
            if not self._entered.done():
                self._entered.set_exception(exc)
            elif not isinstance(exc, (asyncio.CancelledError, Exception)):
                raise
            else:
                _log.debug("yamux task ended: %r", exc)

    async def entered(self) -> Any:
        return await asyncio.shield(self._entered)

    @property
    def done(self) -> bool:
        return self._task.done()

    async def aclose(self) -> None:
        self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def _knock(service_id: int, *, ack: bool = False, error: str = "") -> grpc_broker_pb2.ConnInfo:
    return grpc_broker_pb2.ConnInfo(
        service_id=service_id,
        knock=grpc_broker_pb2.ConnInfo.Knock(knock=True, ack=ack, error=error),
    )


class _ChannelWithCleanup(grpc.aio.Channel):
    """A channel that also stops its dial bridge when closed."""

    def __init__(self, inner: grpc.aio.Channel, cleanup: Callable[[], Awaitable[None]]) -> None:
        self._inner = inner
        self._cleanup: Callable[[], Awaitable[None]] | None = cleanup

    async def __aenter__(self) -> _ChannelWithCleanup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            await cleanup()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_stream(method, *args, **kwargs)


class _AioStream(anyio.abc.ByteStream):
    """An asyncio stream pair as an anyio ByteStream, for the local side of splices.

    anyio's own socket streams wait for readability with a future that fails its
    wake-up callback when the waiting task is cancelled at the wrong moment (which
    splices do when the other direction ends); asyncio's streams do not.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            data = await self._reader.read(max_bytes)
        except (ConnectionError, OSError) as exc:
            raise anyio.BrokenResourceError from exc
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        if self._writer.is_closing():
            raise anyio.ClosedResourceError
        try:
            self._writer.write(item)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise anyio.BrokenResourceError from exc

    async def send_eof(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof() and not self._writer.is_closing():
                self._writer.write_eof()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _splice(local: _AioStream, remote: yamux.YamuxStream) -> None:
    """Copy both ways until both reached EOF (passed on as half-closes). On any error
    both sides are closed (the yamux one reset) -- by closing, never by cancelling."""
    failed = False

    async def copy(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
        nonlocal failed
        try:
            while True:
                try:
                    chunk = await src.receive(_CHUNK)
                except anyio.EndOfStream:
                    break
                await dst.send(chunk)
            await dst.send_eof()
        except Exception as exc:  # either side broke: end the pair
            if not failed:
                failed = True
                _log.debug("spliced connection aborted: %r", exc)
                remote.reset()
                await local.aclose()

    try:
        await asyncio.gather(copy(local, remote), copy(remote, local))
    finally:
        if not failed:
            await local.aclose()
            with contextlib.suppress(Exception):
                await remote.aclose()
        else:
            remote.reset()


class _NoRouteError(ConnectionClosedError):
    """A knock for an id that has no broker server (go-plugin: ``no listener for id N``)."""


class _Router:
    """Accepts the session's streams and splices each to a unix socket: the target of
    the oldest pending knock, else the default (none: the stream is reset)."""

    def __init__(self, session: yamux.Session, default: str | None = None) -> None:
        self._session = session
        self._default = default
        self._routes: dict[int, str] = {}
        self._knocks: collections.deque[int] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._locals: set[_AioStream] = set()
        self.closed = asyncio.Event()

    def add_route(self, service_id: int, path: str) -> None:
        self._routes[service_id] = path

    def remove_route(self, service_id: int) -> None:
        self._routes.pop(service_id, None)
        while service_id in self._knocks:
            self._knocks.remove(service_id)

    def knock(self, service_id: int) -> None:
        """Send the next accepted stream to ``service_id``'s server."""
        if service_id not in self._routes:
            raise _NoRouteError(f"no listener for id {service_id}", step="yamux knock")
        self._knocks.append(service_id)

    def _route(self) -> str | None:
        while self._knocks:
            path = self._routes.get(self._knocks.popleft())
            if path is not None:
                return path
        return self._default

    async def run(self) -> None:
        try:
            while True:
                try:
                    stream = await self._session.accept_stream()
                except (yamux.SessionClosedError, anyio.ClosedResourceError):
                    return
                path = self._route()
                if path is None:
                    _log.warning(
                        "yamux stream %d: no knock and no default: reset", stream.stream_id
                    )
                    stream.reset()
                    continue
                task = asyncio.ensure_future(self._serve_one(stream, path))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self.closed.set()

    async def _serve_one(self, stream: yamux.YamuxStream, path: str) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            _log.warning("yamux stream %d: cannot reach %s: %s", stream.stream_id, path, exc)
            stream.reset()
            return
        local = _AioStream(reader, writer)
        self._locals.add(local)
        try:
            await _splice(local, stream)
        finally:
            self._locals.discard(local)

    async def aclose(self) -> None:
        for local in list(self._locals):
            await local.aclose()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=2)
        for task in list(self._tasks):
            task.cancel()


class _DialBridge:
    """A private unix socket whose every connection opens a yamux stream (after
    ``before_open``, under ``lock``), spliced with asyncio streams (see
    :class:`_AioStream`)."""

    def __init__(
        self,
        session: yamux.Session,
        before_open: Callable[[], Awaitable[None]] | None,
        lock: anyio.Lock,
        directory: str,
    ) -> None:
        self._session = session
        self._before_open = before_open
        self._lock = lock
        self._dir = tempfile.mkdtemp(prefix="dial-", dir=directory)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locals: set[_AioStream] = set()

    async def start(self) -> str:
        path = os.path.join(self._dir, "s")
        self._server = await asyncio.start_unix_server(self._on_conn, path)
        return path

    def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._dial_one(_AioStream(reader, writer)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial_one(self, local: _AioStream) -> None:
        self._locals.add(local)
        try:
            try:
                async with self._lock:
                    if self._before_open is not None:
                        await self._before_open()
                    stream = await self._session.open_stream()
            except Exception as exc:
                _log.warning("broker dial over yamux failed: %s", exc)
                await local.aclose()
                return
            await _splice(local, stream)
        finally:
            self._locals.discard(local)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for local in list(self._locals):
            await local.aclose()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=2)
        for task in list(self._tasks):
            task.cancel()
        shutil.rmtree(self._dir, ignore_errors=True)


class _Muxer:
    """What both sides share: the session, knocks, broker accept and dial."""

    def __init__(self, tls: TLSConfig | None) -> None:
        self._tls = tls
        self._session: yamux.Session | None = None
        self._router: _Router | None = None
        self._dial_lock = anyio.Lock()
        self._held: list[_Held] = []
        self._dial_bridges: set[_DialBridge] = set()
        self._private_dir = tempfile.mkdtemp(prefix="plugwire-mux-")
        os.chmod(self._private_dir, 0o700)

    def set_tls(self, tls: TLSConfig | None) -> None:
        """Use ``tls`` inside each stream (the host learns it from the announce line)."""
        self._tls = tls

    def _session_or_raise(self) -> yamux.Session:
        if self._session is None or self._session.closed:
            raise ConnectionClosedError("the multiplexed connection is closed", step="yamux")
        return self._session

    async def _private_server(self, server: grpc.aio.Server) -> Listening:
        env = {"PLUGIN_UNIX_SOCKET_DIR": self._private_dir}
        return await start_server(server, network="unix", environ=env, tls=self._tls)

    # -- broker hooks (called by GrpcBroker) -----------------------------------

    async def accept(self, broker: GrpcBroker, service_id: int, register: Register) -> BrokerServer:
        from .broker import BrokerServer

        bridge = self._router
        if bridge is None:
            raise ConnectionClosedError(
                "the multiplexed connection is not up", step="broker accept"
            )
        server = grpc.aio.server(options=SERVER_OPTIONS)
        register(server)
        listening = await self._private_server(server)
        bridge.add_route(service_id, listening.address.address)
        knocks = asyncio.ensure_future(self._answer_knocks(broker, service_id))

        def closed() -> None:
            knocks.cancel()
            bridge.remove_route(service_id)

        return BrokerServer(service_id, listening.address, server, listening, closed)

    async def _answer_knocks(self, broker: GrpcBroker, service_id: int) -> None:
        while True:
            msg = await broker.receive_knock(service_id)
            error = ""
            if msg.service_id != service_id or not msg.knock.knock or msg.knock.ack:
                error = f"knock received for service ID {service_id} with incorrect values"
            else:
                bridge = self._router
                try:
                    if bridge is None:
                        raise ConnectionClosedError("no yamux session", step="knock")
                    bridge.knock(service_id)
                except ConnectionClosedError as exc:
                    error = exc.message
            try:
                await broker.send_raw(_knock(service_id, ack=True, error=error))
            except (ClosedError, ConnectionClosedError):
                return

    async def dial(self, broker: GrpcBroker, service_id: int) -> grpc.aio.Channel:
        session = self._session_or_raise()

        async def knock() -> None:
            await broker.send_raw(_knock(service_id))
            reply = await broker.receive_ack(service_id, KNOCK_TIMEOUT)
            if reply.service_id != service_id:
                raise ProtocolError(
                    f"handshake failed for multiplexing on id {service_id}",
                    step="broker knock",
                    seen=reply.service_id,
                )
            if not (reply.knock.knock and reply.knock.ack):
                raise ProtocolError(
                    f"handshake failed for multiplexing on id {service_id}; expected knock and ack",
                    step="broker knock",
                    seen=str(reply.knock),
                )
            if reply.knock.error:
                raise ConnectionClosedError(
                    f"failed to knock for id {service_id}: {reply.knock.error}", step="broker knock"
                )

        return await self._dial_channel(session, knock)

    async def _dial_channel(
        self,
        session: yamux.Session,
        before_open: Callable[[], Awaitable[None]] | None,
        options: Any = (),
    ) -> grpc.aio.Channel:
        bridge = _DialBridge(session, before_open, self._dial_lock, self._private_dir)
        path = await bridge.start()
        self._dial_bridges.add(bridge)
        channel = await open_channel(Address("unix", path), self._tls, options=options)

        async def cleanup() -> None:
            self._dial_bridges.discard(bridge)
            await bridge.aclose()

        return _ChannelWithCleanup(channel, cleanup)

    async def _route_until(
        self, session: yamux.Session, router: _Router, stop: asyncio.Event
    ) -> None:
        """Serve the session's incoming streams until ``stop`` or the session ends; then
        end the session first, so spliced connections finish by themselves."""
        self._session = session
        self._router = router
        run = asyncio.ensure_future(router.run())
        try:
            await _first_of(stop.wait(), router.closed.wait())
        finally:
            await session.aclose()
            await router.aclose()
            run.cancel()
            with contextlib.suppress(BaseException):
                await run

    async def aclose(self) -> None:
        for bridge in list(self._dial_bridges):
            await bridge.aclose()
        self._dial_bridges.clear()
        for held in reversed(self._held):
            await held.aclose()
        self._held.clear()
        shutil.rmtree(self._private_dir, ignore_errors=True)


class _MuxListening(Listening):
    def __init__(self, address: Address, muxer: ServerMuxer, inner: Listening) -> None:
        super().__init__(address)
        self._muxer = muxer
        self._inner = inner

    async def aclose(self) -> None:
        await self._muxer.aclose()
        await self._inner.aclose()
        await super().aclose()


class ServerMuxer(_Muxer):
    """The plugin's side: one yamux server session over the host's connection."""

    async def listen(
        self, server: grpc.aio.Server, environ: Mapping[str, str], network: str
    ) -> Listening:
        """Start ``server`` privately and listen publicly for the host's connection."""
        inner = await self._private_server(server)
        listener, address = _public_listener(network, environ)
        main_target = inner.address.address

        async def body(stop: asyncio.Event, entered: asyncio.Future[Any]) -> None:
            entered.set_result(None)
            try:
                conn = await _first_connection(listener, stop)
                if conn is None:
                    return
            finally:
                if address.network == "unix":
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(address.address)
            async with yamux.server(conn, name="plugin") as session:
                await self._route_until(session, _Router(session, main_target), stop)

        held = _Held(body)
        await held.entered()
        self._held.append(held)
        return _MuxListening(address, self, inner)


class ClientMuxer(_Muxer):
    """The host's side: one yamux client session over the plugin's listener."""

    async def connect(self, address: Address) -> None:
        """Connect to the plugin and start the session and the broker serve bridge."""
        if address.network == "unix":
            reader, writer = await asyncio.open_unix_connection(address.address)
        else:
            host, _, port = address.address.rpartition(":")
            reader, writer = await asyncio.open_connection(host, int(port))
        conn = _AioStream(reader, writer)

        async def body(stop: asyncio.Event, entered: asyncio.Future[Any]) -> None:
            async with yamux.client(conn, name="host") as session:
                entered.set_result(None)
                await self._route_until(session, _Router(session), stop)

        held = _Held(body)
        await held.entered()
        self._held.append(held)

    async def main_channel(self, options: Any = ()) -> grpc.aio.Channel:
        """The main gRPC channel: every connect opens a yamux stream (no knock)."""
        return await self._dial_channel(self._session_or_raise(), None, options)


async def _first_of(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _first_connection(
    sock: socket.socket, stop: asyncio.Event
) -> anyio.abc.ByteStream | None:
    """The host's one connection (``None`` when stopped first); the listener is closed."""
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(sock))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({accept, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not accept.done():
            accept.cancel()
            with contextlib.suppress(BaseException):
                await accept
        sock.close()
    if accept.cancelled() or accept.exception() is not None:
        return None
    conn, _ = accept.result()
    reader, writer = await asyncio.open_connection(sock=conn)
    return _AioStream(reader, writer)


def _public_listener(network: str, environ: Mapping[str, str]) -> tuple[socket.socket, Address]:
    if network == "unix":
        sock_dir = environ.get("PLUGIN_UNIX_SOCKET_DIR") or None
        fd, path = tempfile.mkstemp(prefix="plugin", dir=sock_dir)
        os.close(fd)
        os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(1)
        sock.setblocking(False)
        return sock, Address("unix", path)
    if network == "tcp":
        low, high = port_range(environ)
        for port in range(low, high + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen(1)
            sock.setblocking(False)
            return sock, Address("tcp", f"127.0.0.1:{sock.getsockname()[1]}")
        raise ConfigError("couldn't bind plugin TCP listener", step="listen")
    raise ConfigError("unknown network", step="listen", expected="unix or tcp", seen=network)


def server_muxer(tls: TLSConfig | None) -> ServerMuxer:
    """The plugin-side muxer."""
    return ServerMuxer(tls)


def client_muxer(tls: TLSConfig | None) -> ClientMuxer:
    """The host-side muxer (TLS is set later, once the announce line is parsed)."""
    return ClientMuxer(tls)


_ = AsyncIterator  # typing only
