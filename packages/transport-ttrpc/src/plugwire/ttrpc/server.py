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

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import ConfigError, PlugwireError
from plugwire.core.transport import Address

from ._connection import MethodHandler, ServerConnection, ServerContext
from ._frame import MAX_MESSAGE_SIZE
from ._sockets import accept, bind, socket_stream
from .credentials import PeerCheck
from .service import method_handlers

__all__ = ["MethodHandler", "Server", "ServerContext"]

log = logging.getLogger("plugwire.ttrpc.server")


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
        handshake: PeerCheck | None = None,
    ) -> None:
        self.max_message_size = max_message_size
        self.handshake = handshake
        self._services: dict[str, dict[str, MethodHandler]] = {}
        self._connections: set[ServerConnection] = set()

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
        conn = ServerConnection(
            self._services, stream, peer, max_message_size=self.max_message_size
        )
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

    async def _drain(self, connections: set[ServerConnection]) -> None:
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
        mine: set[ServerConnection] = set()
        name = str(bound)

        async def serve_accepted(conn_sock: socket.socket) -> None:
            if not self._handshake(conn_sock, name):
                return
            conn = ServerConnection(
                self._services,
                await socket_stream(conn_sock),
                _conn_peer(conn_sock, name),
                max_message_size=self.max_message_size,
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
