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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Coroutine
from typing import Any

from plugwire.core.errors import ConfigError
from plugwire.core.transport import Address

from ._listen import ListenConfig, new_socket_path

__all__ = ["TLSOriginator", "TLSTerminator", "private_socket_path"]

_BUF = 256 * 1024


def private_socket_path(prefix: str = "plugwire") -> tuple[str, str]:
    """``(directory, socket path)``: a fresh 0700 directory only we can enter."""
    directory = tempfile.mkdtemp(prefix=f"{prefix}-")
    os.chmod(directory, 0o700)
    return directory, os.path.join(directory, "s")


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
    """Accept TLS at a public address, forward plaintext to ``inner`` (a unix socket)."""

    def __init__(self, context: ssl.SSLContext, inner_path: str) -> None:
        super().__init__()
        self._context = context
        self._inner = inner_path
        self.address: Address | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            inner = await asyncio.open_unix_connection(self._inner)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), inner)

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
        self._track(self._handle(reader, writer))

    async def start(self) -> str:
        """Listen on a private socket and return its path."""
        self._dir, path = private_socket_path("plugwire-tls")
        self._server = await asyncio.start_unix_server(self._on_conn, path)
        self.path = path
        return path
