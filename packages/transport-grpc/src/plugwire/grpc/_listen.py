"""Where a go-plugin server listens: a unix socket or a TCP port in a range."""

from __future__ import annotations

import contextlib
import grp
import os
import tempfile
from typing import Any

import attrs

import grpc
from plugwire.core.address import Address
from plugwire.core.errors import ConfigError, PluginStartError

__all__ = [
    "CHANNEL_OPTIONS",
    "SERVER_OPTIONS",
    "ListenConfig",
    "add_port",
    "remove_socket",
]

_MAX = 2**31 - 1
#: go-plugin dials with MaxCallRecvMsgSize/MaxCallSendMsgSize = MaxInt32.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", _MAX),
    ("grpc.max_send_message_length", _MAX),
    ("grpc.enable_http_proxy", 0),
    ("grpc.enable_retries", 0),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", _MAX),
    ("grpc.max_send_message_length", _MAX),
    ("grpc.so_reuseport", 0),
]


@attrs.frozen(kw_only=True)
class ListenConfig:
    """Where a server listens, parsed once (go-plugin's side of it:
    :meth:`plugwire.grpc.goplugin.config.PluginEnv.from_env`).

    Attributes:
        socket_dir: directory for unix sockets (``None``: the temp dir).
        socket_group: group (name or gid) given the sockets, mode 0660.
        min_port, max_port: the TCP port range on 127.0.0.1 (both 0: any port).
    """

    socket_dir: str | None = None
    socket_group: str | None = None
    min_port: int = 0
    max_port: int = 0

    def __attrs_post_init__(self) -> None:
        if self.min_port > self.max_port:
            raise ConfigError(
                f"min port {self.min_port} is greater than max port {self.max_port}",
                step="listen",
                expected="min_port <= max_port",
                seen=f"{self.min_port}..{self.max_port}",
            )


def _add(server: grpc.aio.Server, target: str, creds: grpc.ServerCredentials | None) -> int:
    if creds is None:
        return server.add_insecure_port(target)
    return server.add_secure_port(target, creds)


def add_port(
    server: grpc.aio.Server,
    *,
    network: str,
    listen: ListenConfig,
    credentials: grpc.ServerCredentials | None = None,
) -> Address:
    """Bind ``server`` the way go-plugin's ``serverListener`` does and return the address.

    ``unix``: a fresh socket path in ``listen.socket_dir`` (or the temp dir);
    ``tcp``: the first free port of ``listen.min_port``..``listen.max_port`` on
    127.0.0.1 (any port when both are 0). Call :func:`fix_socket_mode` after the
    server started to apply ``listen.socket_group``.
    """
    if network == "unix":
        path = new_socket_path(listen)
        try:
            _add(server, f"unix:{path}", credentials)
        except RuntimeError as exc:
            raise PluginStartError(
                "cannot listen on unix socket", step="listen", seen=f"{path}: {exc}"
            ) from None
        return Address("unix", path)
    if network == "tcp":
        low, high = listen.min_port, listen.max_port
        for port in range(low, high + 1):
            try:
                bound = _add(server, f"127.0.0.1:{port}", credentials)
            except RuntimeError:
                continue
            if bound:
                return Address("tcp", f"127.0.0.1:{bound}")
        raise PluginStartError(
            "couldn't bind plugin TCP listener",
            step="listen",
            expected=f"a free port in {low}..{high}",
        )
    raise ConfigError("unknown network", step="listen", expected="unix or tcp", seen=network)


def new_socket_path(listen: ListenConfig) -> str:
    """A fresh (not yet existing) socket path in ``listen.socket_dir``."""
    fd, path = tempfile.mkstemp(prefix="plugin", dir=listen.socket_dir)
    os.close(fd)
    os.unlink(path)
    return path


def fix_socket_mode(address: Address, listen: ListenConfig) -> None:
    """Give a unix socket to ``listen.socket_group`` with mode 0660 when it is set."""
    group = listen.socket_group
    if address.network != "unix" or not group:
        return
    try:
        gid = int(group)
    except ValueError:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(
                f"failed to find gid from {group!r}", step="listen", seen=group
            ) from None
    os.chown(address.address, -1, gid)
    os.chmod(address.address, 0o660)


def remove_socket(address: Address | None) -> None:
    """Remove a unix socket file, ignoring one already gone."""
    if address is not None and address.network == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.address)


def channel_target(address: Address) -> str:
    """The gRPC target string for an address."""
    if address.network == "unix":
        return f"unix:{address.address}"
    return address.address
