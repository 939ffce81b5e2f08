"""Broker multiplexing over yamux (``PLUGIN_MULTIPLEX_GRPC``), as go-plugin's grpcmux.

The host is the yamux client, the plugin the yamux server, over the plugin's one
listener connection. gRPC (and TLS, when set up) runs inside each yamux stream.
The yamux side -- the session, splicing streams to the private unix sockets grpc.aio
needs, knock routing, dial bridges -- is :class:`._yamux_bridge.GoPluginMuxer`; this
module adds go-plugin's process wiring around it:

* plugin: the public listener accepts the host's single connection; the muxer sends
  each stream to the main gRPC server (on a private socket), or to the broker server
  of an id when a knock for it is pending;
* host: the main channel dials through the muxer's main dial bridge (each gRPC
  connect opens a stream);
* a broker dial sends ``knock{knock: true}`` on the broker stream and needs
  ``knock{knock: true, ack: true, error: ""}`` back (within 5 s) before it opens the
  stream; the accepting side answers after routing the next stream to the id.

The muxer lives in a task of its own (anyio task groups must be left by the task
that entered them), so any task can close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

import grpc
from plugwire.core._unix import connect_unix, stream_from_socket
from plugwire.core.errors import ClosedError, ConfigError, ConnectionClosedError, ProtocolError
from plugwire.core.transport import Address

from .._generated.plugin import grpc_broker_pb2
from .._listen import ListenConfig, new_socket_path
from .._wire import Listening, open_channel, start_server
from .._yamux_bridge import GoPluginMuxer
from ..mtls import TLSConfig

if TYPE_CHECKING:
    from .broker import BrokerServer, GrpcBroker, Register

__all__ = ["ClientMuxer", "ServerMuxer", "client_muxer", "server_muxer"]

_log = logging.getLogger("plugwire.grpc.mux")
KNOCK_TIMEOUT = 5.0


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


def _unix_path(target: str) -> str:
    return target.removeprefix("unix:")


class _Muxer:
    """What both sides share: the running muxer, knocks, broker accept and dial."""

    def __init__(self, tls: TLSConfig | None) -> None:
        self._tls = tls
        self._muxer: GoPluginMuxer | None = None
        self._held: list[_Held] = []
        self._private_dir = tempfile.mkdtemp(prefix="plugwire-mux-")
        os.chmod(self._private_dir, 0o700)

    def set_tls(self, tls: TLSConfig | None) -> None:
        """Use ``tls`` inside each stream (the host learns it from the announce line)."""
        self._tls = tls

    def _muxer_or_raise(self, step: str) -> GoPluginMuxer:
        muxer = self._muxer
        if muxer is None or muxer.session.closed:
            raise ConnectionClosedError("the multiplexed connection is not up", step=step)
        return muxer

    async def _private_server(self, server: grpc.aio.Server) -> Listening:
        listen = ListenConfig(socket_dir=self._private_dir)
        return await start_server(server, network="unix", listen=listen, tls=self._tls)

    # -- broker hooks (called by GrpcBroker) -----------------------------------

    async def accept(self, broker: GrpcBroker, service_id: int, register: Register) -> BrokerServer:
        from .broker import BrokerServer

        muxer = self._muxer_or_raise("broker accept")
        server = broker.new_server()
        register(server)
        listening = await self._private_server(server)
        muxer.listen(service_id, listening.address.address)
        knocks = asyncio.ensure_future(self._answer_knocks(broker, muxer, service_id))

        def closed() -> None:
            knocks.cancel()
            muxer.unlisten(service_id)

        return BrokerServer(service_id, listening.address, server, listening, closed)

    @staticmethod
    async def _answer_knocks(broker: GrpcBroker, muxer: GoPluginMuxer, service_id: int) -> None:
        while True:
            msg = await broker.receive_knock(service_id)
            if msg.service_id != service_id or not msg.knock.knock or msg.knock.ack:
                error = f"knock received for service ID {service_id} with incorrect values"
            elif muxer.session.closed:
                error = "the multiplexed connection is closed"
            else:
                error = muxer.accept_knock(service_id)
            try:
                await broker.send_raw(_knock(service_id, ack=True, error=error))
            except (ClosedError, ConnectionClosedError):
                return

    async def dial(self, broker: GrpcBroker, service_id: int) -> grpc.aio.Channel:
        muxer = self._muxer_or_raise("broker dial")

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

        target, close = await muxer.open_dial(knock)
        try:
            return await open_channel(
                Address("unix", _unix_path(target)), self._tls, on_close=close
            )
        except BaseException:
            await close()
            raise

    async def _run(
        self,
        conn: anyio.abc.ByteStream,
        stop: asyncio.Event,
        entered: asyncio.Future[Any] | None,
        *,
        plugin: bool,
        main_target: str | None = None,
    ) -> None:
        """Run the muxer over ``conn`` until ``stop`` or the session ends."""
        async with GoPluginMuxer(
            conn,
            plugin=plugin,
            main_target=main_target,
            name="plugin" if plugin else "host",
            directory=self._private_dir,
        ) as muxer:
            self._muxer = muxer
            if entered is not None:
                entered.set_result(None)
            await _first_of(stop.wait(), muxer.session.wait_closed())

    async def aclose(self) -> None:
        for held in reversed(self._held):
            await held.aclose()
        self._held.clear()
        self.remove_files()

    def remove_files(self) -> None:
        """Remove the private directory (its sockets) and nothing else."""
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

    def remove_files(self) -> None:
        self._muxer.remove_files()
        self._inner.remove_files()
        super().remove_files()


class ServerMuxer(_Muxer):
    """The plugin's side: one yamux server session over the host's connection."""

    async def listen(
        self, server: grpc.aio.Server, listen: ListenConfig, network: str
    ) -> Listening:
        """Start ``server`` privately and listen publicly for the host's connection."""
        inner = await self._private_server(server)
        listener, address = _public_listener(network, listen)
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
            await self._run(conn, stop, None, plugin=True, main_target=main_target)

        held = _Held(body)
        await held.entered()
        self._held.append(held)
        return _MuxListening(address, self, inner)


class ClientMuxer(_Muxer):
    """The host's side: one yamux client session over the plugin's listener."""

    async def connect(self, address: Address) -> None:
        """Connect to the plugin and start the session and the broker serve bridge."""
        conn: anyio.abc.ByteStream
        if address.network == "unix":
            conn = await connect_unix(address.address)
        else:
            host, _, port = address.address.rpartition(":")
            conn = await anyio.connect_tcp(host, int(port))

        async def body(stop: asyncio.Event, entered: asyncio.Future[Any]) -> None:
            await self._run(conn, stop, entered, plugin=False)

        held = _Held(body)
        await held.entered()
        self._held.append(held)

    async def main_channel(self, options: Any = ()) -> grpc.aio.Channel:
        """The main gRPC channel: every connect opens a yamux stream (no knock)."""
        muxer = self._muxer_or_raise("main channel")
        path = _unix_path(muxer.main_channel_target)
        return await open_channel(Address("unix", path), self._tls, options=options)


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
    return await stream_from_socket(conn)


def _public_listener(network: str, listen: ListenConfig) -> tuple[socket.socket, Address]:
    if network == "unix":
        path = new_socket_path(listen)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(1)
        sock.setblocking(False)
        return sock, Address("unix", path)
    if network == "tcp":
        low, high = listen.min_port, listen.max_port
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
