"""TLS in front of grpc.aio, done by Python's ``ssl`` (OpenSSL).

go-plugin's AutoMTLS certificates are ECDSA P-521. grpcio's BoringSSL offers no
P-521 signature algorithm, so a grpcio TLS endpoint fails every handshake with a
go-plugin peer (``NO_COMMON_SIGNATURE_ALGORITHMS`` / ``PEER_DID_NOT_RETURN_A_CERTIFICATE``).
plugwire therefore keeps gRPC itself in plaintext on a private unix socket (in a
0700 directory) and terminates or originates TLS here:

* :class:`TLSTerminator` listens on the public address with TLS (client certificate
  required and verified) and pipes each connection to the private gRPC server;
* :class:`TLSOriginator` listens on a private socket for a plaintext gRPC channel and
  pipes each connection over TLS to the peer.

ALPN is ``h2`` both ways, as gRPC requires.

A 0700 directory keeps other users off the private sockets, not a process of the
same user, so neither private leg trusts the socket alone:

* behind the terminator, gRPC listens with grpcio's own TLS on the private socket,
  with a throwaway P-256 certificate made per server and kept in memory
  (:class:`PrivateLeg`), which both ends present and each trusts alone: a client
  without the terminator's key is refused by grpcio, as on the public address;
* the originator accepts only connections from its own process (``SO_PEERCRED``
  pid), which is where the grpc channel dialling it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import struct
import tempfile
from collections.abc import Coroutine
from typing import Any

import attrs

from plugwire.core.address import Address
from plugwire.core.errors import ConfigError

from ._listen import ListenConfig, new_socket_path
from .mtls import PRIVATE_LEG_CURVE, SERVER_NAME, Certificate, TLSConfig, generate_cert

__all__ = [
    "PRIVATE_LEG_CURVE",
    "PrivateLeg",
    "TLSOriginator",
    "TLSTerminator",
    "peer_pid",
    "prepare_private_leg",
    "private_socket_path",
]

_BUF = 256 * 1024


_SUN_PATH_MAX = 107  # sockaddr_un.sun_path: 108 bytes with the terminating NUL


def private_socket_path(prefix: str = "plugwire", within: str | None = None) -> tuple[str, str]:
    """``(directory, socket path)``: a fresh 0700 directory only we can enter.

    ``within``: the directory to make it in (a host's ``PLUGIN_UNIX_SOCKET_DIR``, which
    the host removes when the plugin is gone, however it ended: a SIGKILLed plugin
    leaves nothing behind); the temp dir without it, or when a socket path there would
    be too long for ``sockaddr_un``.
    """
    if within is not None and len(os.path.join(within, f"{prefix}-xxxxxxxx", "s")) > _SUN_PATH_MAX:
        within = None
    directory = tempfile.mkdtemp(prefix=f"{prefix}-", dir=within)
    os.chmod(directory, 0o700)
    return directory, os.path.join(directory, "s")


@attrs.frozen
class PrivateLeg:
    """The TLS of the private leg from a terminator to its gRPC server: one
    certificate (:data:`PRIVATE_LEG_CURVE`) that the gRPC server presents and the
    terminator presents as its client certificate, each end trusting exactly it; made
    per server, never written to disk. Only this process holds its key.

    ``context`` is the terminator's client ``ssl`` context for it, built once."""

    cert: Certificate
    context: ssl.SSLContext = attrs.field(eq=False, repr=False)

    @classmethod
    def generate(cls) -> PrivateLeg:
        """A new leg: the one :func:`prepare_private_leg` made ahead, if any."""
        if _prepared_legs:
            return _prepared_legs.pop()
        return cls._make(generate_cert(curve=PRIVATE_LEG_CURVE))

    @classmethod
    def _make(cls, cert: Certificate) -> PrivateLeg:
        tls = TLSConfig(cert_pem=cert.cert_pem, key_pem=cert.key_pem, peer_roots_pem=cert.cert_pem)
        return cls(cert, tls.client_context())

    def server_credentials(self) -> Any:
        import grpc

        return grpc.ssl_server_credentials(
            [(self.cert.key_pem, self.cert.cert_pem)],
            root_certificates=self.cert.cert_pem,
            require_client_auth=True,
        )

    def client_context(self) -> ssl.SSLContext:
        return self.context


_prepared_legs: list[PrivateLeg] = []


def prepare_private_leg() -> None:
    """Make the next server's private leg ahead of time (its certificate and the
    terminator's ``ssl`` context): a fork server calls this after each fork, so a
    forked launch finds it made (see :func:`plugwire.grpc.mtls.prepare_certs`, the
    same for certificates). The leg is handed out once; preparing again drops it."""
    from . import mtls

    # Never one of the certificates prepare_certs made for the launch's own use.
    _prepared_legs[:] = [PrivateLeg._make(mtls._generate(SERVER_NAME, PRIVATE_LEG_CURVE))]


def peer_pid(sock: socket.socket | None) -> int | None:
    """The pid of the process at the other end of a unix socket (``SO_PEERCRED``)."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_BUF)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _Proxy:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._dir: str | None = None

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def aclose(self) -> None:
        """Stop listening and cut every piped connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(BaseException):
                await task
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class TLSTerminator(_Proxy):
    """Accept TLS at a public address, forward plaintext to ``inner`` (a unix socket).

    With a :class:`PrivateLeg`, the first private connection is opened as soon as the
    terminator listens (its TLS handshake with grpcio runs while the host reads the
    announce line and dials): a go-plugin host makes one connection per plugin, and
    waited for both handshakes in a row before.
    """

    _Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]

    def __init__(
        self, context: ssl.SSLContext, inner_path: str, inner: PrivateLeg | None = None
    ) -> None:
        super().__init__()
        self._context = context
        self._inner = inner_path
        self._inner_context = inner.client_context() if inner is not None else None
        self._spare: asyncio.Task[TLSTerminator._Stream] | None = None
        self.address: Address | None = None

    async def _connect_inner(self) -> TLSTerminator._Stream:
        if self._inner_context is None:
            return await asyncio.open_unix_connection(self._inner)
        return await asyncio.open_unix_connection(
            self._inner,
            ssl=self._inner_context,
            server_hostname=SERVER_NAME,
            ssl_handshake_timeout=10,
        )

    def _preconnect(self) -> None:
        if self._inner_context is not None and self._spare is None:
            self._spare = asyncio.ensure_future(self._connect_inner())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        spare, self._spare = self._spare, None
        inner: TLSTerminator._Stream | None = None
        if spare is not None:
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                inner = await spare
        try:
            if inner is None:
                inner = await self._connect_inner()
        except (OSError, ssl.SSLError, TimeoutError):
            writer.close()
            return
        await _splice((reader, writer), inner)

    async def aclose(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.cancel()
            with contextlib.suppress(BaseException):
                _reader, spare_writer = await spare
                spare_writer.close()
        await super().aclose()

    def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track(self._handle(reader, writer))

    async def listen(self, network: str, listen: ListenConfig) -> Address:
        """Listen like go-plugin's ``serverListener`` (see :func:`._listen.add_port`)."""
        if network == "unix":
            path = new_socket_path(listen)
            self._server = await asyncio.start_unix_server(
                self._on_conn, path, ssl=self._context, ssl_handshake_timeout=10
            )
            self.address = Address("unix", path)
            self._preconnect()
            return self.address
        if network == "tcp":
            low, high = listen.min_port, listen.max_port
            for port in range(low, high + 1):
                try:
                    self._server = await asyncio.start_server(
                        self._on_conn,
                        "127.0.0.1",
                        port,
                        ssl=self._context,
                        ssl_handshake_timeout=10,
                    )
                except OSError:
                    continue
                sock: socket.socket = self._server.sockets[0]
                self.address = Address("tcp", f"127.0.0.1:{sock.getsockname()[1]}")
                self._preconnect()
                return self.address
            raise ConfigError(
                "couldn't bind plugin TCP listener",
                step="listen",
                expected=f"a free port in {low}..{high}",
            )
        raise ConfigError("unknown network", step="listen", expected="unix or tcp", seen=network)


class TLSOriginator(_Proxy):
    """Accept plaintext on a private unix socket, forward over TLS to ``target``."""

    def __init__(self, context: ssl.SSLContext, target: Address, server_name: str) -> None:
        super().__init__()
        self._context = context
        self._target = target
        self._server_name = server_name
        self.path: str | None = None
        #: connections refused because they came from another process
        self.refused = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._target.network == "unix":
                outer = await asyncio.open_unix_connection(
                    self._target.address,
                    ssl=self._context,
                    server_hostname=self._server_name,
                    ssl_handshake_timeout=10,
                )
            else:
                host, _, port = self._target.address.rpartition(":")
                outer = await asyncio.open_connection(
                    host,
                    int(port),
                    ssl=self._context,
                    server_hostname=self._server_name,
                    ssl_handshake_timeout=10,
                )
        except (OSError, ssl.SSLError, TimeoutError):
            # grpc sees the connection drop and reports UNAVAILABLE.
            writer.close()
            return
        await _splice((reader, writer), outer)

    def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only the grpc channel of this process may borrow our certificate.
        if peer_pid(writer.get_extra_info("socket")) != os.getpid():
            self.refused += 1
            writer.close()
            return
        self._track(self._handle(reader, writer))

    async def start(self) -> str:
        """Listen on a private socket and return its path."""
        self._dir, path = private_socket_path("plugwire-tls")
        self._server = await asyncio.start_unix_server(self._on_conn, path)
        self.path = path
        return path
