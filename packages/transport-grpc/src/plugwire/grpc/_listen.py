"""Where a go-plugin server listens: a unix socket or a TCP port in a range."""

from __future__ import annotations

import contextlib
import grp
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import grpc
from plugwire.core.errors import ConfigError, PluginStartError
from plugwire.core.transport import Address

__all__ = [
    "CHANNEL_OPTIONS",
    "SERVER_OPTIONS",
    "add_port",
    "remove_socket",
    "socket_config_from_env",
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


def socket_config_from_env(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(PLUGIN_UNIX_SOCKET_DIR, PLUGIN_UNIX_SOCKET_GROUP)``, empty values as None."""
    return (
        environ.get("PLUGIN_UNIX_SOCKET_DIR") or None,
        environ.get("PLUGIN_UNIX_SOCKET_GROUP") or None,
    )


def port_range(environ: Mapping[str, str]) -> tuple[int, int]:
    try:
        low = int(environ.get("PLUGIN_MIN_PORT") or 0)
        high = int(environ.get("PLUGIN_MAX_PORT") or 0)
    except ValueError:
        raise ConfigError(
            "couldn't parse PLUGIN_MIN_PORT/PLUGIN_MAX_PORT",
            step="listen",
            expected="integers",
            seen=f"{environ.get('PLUGIN_MIN_PORT')!r}..{environ.get('PLUGIN_MAX_PORT')!r}",
        ) from None
    if low > high:
        raise ConfigError(
            f"PLUGIN_MIN_PORT value of {low} is greater than PLUGIN_MAX_PORT value of {high}",
            step="listen",
        )
    return low, high


def _add(server: grpc.aio.Server, target: str, creds: grpc.ServerCredentials | None) -> int:
    if creds is None:
        return server.add_insecure_port(target)
    return server.add_secure_port(target, creds)


def add_port(
    server: grpc.aio.Server,
    *,
    network: str,
    environ: Mapping[str, str],
    credentials: grpc.ServerCredentials | None = None,
) -> Address:
    """Bind ``server`` the way go-plugin's ``serverListener`` does and return the address.

    ``unix``: a fresh socket path in ``PLUGIN_UNIX_SOCKET_DIR`` (or the temp dir);
    ``tcp``: the first free port of ``PLUGIN_MIN_PORT``..``PLUGIN_MAX_PORT`` on
    127.0.0.1 (any port when both are unset). Call :func:`fix_socket_mode` after the
    server started to apply ``PLUGIN_UNIX_SOCKET_GROUP``.
    """
    if network == "unix":
        sock_dir, _group = socket_config_from_env(environ)
        fd, path = tempfile.mkstemp(prefix="plugin", dir=sock_dir)
        os.close(fd)
        os.unlink(path)
        try:
            _add(server, f"unix:{path}", credentials)
        except RuntimeError as exc:
            raise PluginStartError(
                "cannot listen on unix socket", step="listen", seen=f"{path}: {exc}"
            ) from None
        return Address("unix", path)
    if network == "tcp":
        low, high = port_range(environ)
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


def fix_socket_mode(address: Address, environ: Mapping[str, str]) -> None:
    """Give a unix socket to ``PLUGIN_UNIX_SOCKET_GROUP`` with mode 0660 when it is set."""
    _dir, group = socket_config_from_env(environ)
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
