"""How :class:`~.client.PluginClient` launches a plugin: configuration checks, command,
environment, binary check, the process runner, the announce line, TLS."""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio

import grpc
from plugwire.core.errors import (
    ConfigError,
    HandshakeError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
)
from plugwire.core.process import PluginProcess
from plugwire.core.transport import Address

from ..mtls import Certificate, TLSConfig, der_to_pem, generate_cert
from .announce import Announce
from .config import ClientConfig, SecureConfig
from .errors import ChecksumMismatchError
from .health import GRPC_SERVICE_NAME, check_health

__all__ = [
    "START_CHECK_TIMEOUT",
    "check_answers",
    "check_binary",
    "child_env",
    "client_name",
    "first_line",
    "gid_of",
    "resolve_command",
    "run_process",
    "tls_for",
]

_log = logging.getLogger("plugwire.grpc.goplugin.client")


def client_name(config: ClientConfig) -> str:
    """Check that ``config`` describes one plugin to launch or reattach to, and name it."""
    if (config.cmd is None) == (config.reattach is None):
        raise ConfigError("exactly one of cmd and reattach must be set", step="client config")
    if config.cmd is not None and not config.cmd:
        raise ConfigError("empty plugin command", step="client config")
    if config.secure_config is not None and config.reattach is not None:
        raise ConfigError("only one of reattach or secure_config can be set", step="client config")
    if config.multiplex and config.reattach is not None:
        raise ConfigError(
            "gRPC broker multiplexing is not supported with reattach", step="client config"
        )
    return config.name or (
        os.path.basename(config.cmd[0]) if config.cmd else f"reattached-{config.reattach.pid}"  # type: ignore[union-attr]
    )


def resolve_command(cmd: Sequence[str], *, peer: str | None = None) -> list[str]:
    """Like Go's exec.Command: a bare command name is looked up in the host's PATH (the
    plugin's clean environment may have none).

    A path that exists but cannot be run raises :class:`PluginStartError` saying
    why (not executable, a directory), instead of the spawn's "no such executable".
    """
    argv = list(cmd)
    if os.sep not in argv[0]:
        argv[0] = shutil.which(argv[0]) or argv[0]
    check_executable(argv[0], peer=peer)
    return argv


def check_executable(path: str, *, peer: str | None = None) -> None:
    """Raise :class:`PluginStartError` for a plugin path that exists but is not an
    executable file (a missing one is left to the spawn: "no such executable")."""
    if os.sep not in path:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        problem = "is a directory"
    elif not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif not os.access(path, os.X_OK):
        problem = f"is not executable (mode {stat.filemode(st.st_mode)}; chmod +x it)"
    else:
        return
    raise PluginStartError(
        f"cannot execute plugin: {path} {problem}",
        peer=peer,
        step="start",
        expected="an executable file",
        seen=f"{path}: {problem}",
    )


def child_env(
    cfg: ClientConfig, offer: Sequence[str] = ("grpc",)
) -> tuple[dict[str, str], str, Certificate | None]:
    """The plugin's clean environment, its private socket directory (created here)
    and, with AutoMTLS, the host's throwaway certificate. ``offer``: the wires this
    host accepts; anything beyond plain gRPC is offered in ``PLUGWIRE_WIRES``."""
    own_cert: Certificate | None = None
    versions = ",".join(str(v) for v in sorted(cfg.plugin_sets()))
    env = dict(os.environ) if cfg.inherit_env else {}
    env.update(cfg.env)
    env.update(cfg.handshake.cookie_env())
    env["PLUGIN_MIN_PORT"] = str(cfg.min_port)
    env["PLUGIN_MAX_PORT"] = str(cfg.max_port)
    env["PLUGIN_PROTOCOL_VERSIONS"] = versions
    if cfg.multiplex:
        env["PLUGIN_MULTIPLEX_GRPC"] = "true"
    env.pop("PLUGWIRE_WIRES", None)
    if any(w != "grpc" for w in offer):
        env["PLUGWIRE_WIRES"] = ",".join(offer)
    socket_dir = tempfile.mkdtemp(prefix="plugin-dir")
    if cfg.unix_socket_group:
        gid = gid_of(cfg.unix_socket_group)
        os.chown(socket_dir, -1, gid)
        os.chmod(socket_dir, 0o770)
        env["PLUGIN_UNIX_SOCKET_GROUP"] = cfg.unix_socket_group
    env["PLUGIN_UNIX_SOCKET_DIR"] = socket_dir
    if cfg.auto_mtls:
        _log.debug("configuring client automatic mTLS")
        own_cert = generate_cert()
        env["PLUGIN_CLIENT_CERT"] = own_cert.cert_pem.decode("ascii")
    return env, socket_dir, own_cert


def check_binary(secure: SecureConfig, argv0: str, *, peer: str) -> None:
    """go-plugin's SecureConfig check of the binary before launch."""
    path = argv0 if os.sep in argv0 else shutil.which(argv0)
    if path is None or not os.path.isfile(path):
        raise PluginStartError(
            "error verifying checksum: plugin binary not found",
            peer=peer,
            step="secure config",
            seen=argv0,
        )
    if not secure.check(path):
        raise ChecksumMismatchError(
            "checksums did not match",
            peer=peer,
            step="secure config",
            expected=secure.checksum.hex(),
            seen=path,
        )


def tls_for(
    cfg: ClientConfig, own_cert: Certificate | None, announce: Announce, *, peer: str
) -> TLSConfig | None:
    """The TLS the host dials with, given what the plugin announced."""
    if cfg.tls is not None:
        return cfg.tls
    if cfg.auto_mtls:
        assert own_cert is not None
        if announce.server_cert is None:
            raise HandshakeError(
                "AutoMTLS was requested but the plugin announced no server certificate",
                peer=peer,
                step="announce",
                expected="a base64 DER certificate in field 6",
                seen=announce.format(),
            )
        try:
            server_pem = der_to_pem(announce.server_cert)
        except ConfigError as exc:
            raise HandshakeError(
                "error parsing server cert", peer=peer, step="announce", seen=exc.seen
            ) from None
        return TLSConfig.mutual(own_cert, server_pem)
    if announce.server_cert is not None:
        raise HandshakeError(
            "the plugin serves TLS (it announced a certificate) but this host has no TLS "
            "config: set auto_mtls=True or tls=",
            peer=peer,
            step="announce",
            seen=announce.format()[:80],
        )
    return None


def gid_of(group: str) -> int:
    try:
        return int(group)
    except ValueError:
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"failed to find gid from {group!r}", step="client config") from None


async def run_process(
    proc: PluginProcess,
    ready: asyncio.Future[None],
    exited: anyio.Event | None,
    *,
    peer: str,
) -> None:
    """Run ``proc`` in a task group of its own (a client started without one): ``ready``
    resolves once it started (or with the start error), ``exited`` is set when it ends."""
    try:
        async with anyio.create_task_group() as tg:
            try:
                await proc.start(tg)
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                raise
            ready.set_result(None)
            await proc.wait()
    except PlugwireError:
        pass
    finally:
        if exited is not None:
            exited.set()
        if not ready.done():
            ready.set_exception(PluginStartError("plugin runner ended", peer=peer, step="start"))


async def first_line(
    proc: PluginProcess, deadline: float, start_timeout: float, *, peer: str
) -> str:
    """The plugin's first stdout line (its announce line), by ``deadline``."""
    timeout = max(0.0, deadline - time.monotonic())
    try:
        line = await proc.readline_stdout(timeout=timeout)
    except PluginTimeoutError:
        raise PluginTimeoutError(
            "timeout while waiting for plugin to start",
            peer=peer,
            step="announce",
            expected=f"an announce line within {start_timeout} s",
            seen="; ".join(proc.stderr_tail[-3:]) or "nothing on stdout",
        ) from None
    if line is None:
        with anyio.move_on_after(max(0.1, min(2.0, deadline - time.monotonic()))):
            await proc.wait()
        raise PluginExitedError(
            "plugin exited before we could connect",
            returncode=proc.returncode,
            stderr_tail=proc.stderr_tail,
            peer=peer,
            step="announce",
        )
    return line


#: The bound of :func:`check_answers`' one round trip.
START_CHECK_TIMEOUT = 5.0


async def check_answers(
    channel: grpc.aio.Channel,
    address: Address,
    *,
    timeout: float,
    peer: str,
    map_error: Callable[[grpc.aio.AioRpcError, str], Awaitable[PlugwireError]],
) -> None:
    """One bounded ``Health.Check("plugin")`` round trip: the health service every
    go-plugin server registers. Raises :class:`PluginStartError` naming the address
    when the plugin cannot be reached there or is not SERVING
    (:class:`PluginExitedError` when it died)."""
    method = "/grpc.health.v1.Health/Check"
    try:
        status = await check_health(channel, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        mapped = await map_error(exc, method)
        if isinstance(mapped, PluginExitedError):
            raise mapped from exc
        raise PluginStartError(
            f"plugin does not answer at the address it announced, {address}",
            peer=peer,
            step="health check",
            expected=f"Health.Check({GRPC_SERVICE_NAME!r}) SERVING within {timeout} s",
            seen=f"{exc.code().name}: {(exc.details() or '')[:300]}",
        ) from exc
    if status != 1:
        raise PluginStartError(
            f"plugin at {address} is not serving",
            peer=peer,
            step="health check",
            expected=f"Health.Check({GRPC_SERVICE_NAME!r}) SERVING",
            seen=f"status {status}",
        )
