"""How :class:`~.client.PluginClient` launches a plugin: environment, binary check, TLS."""

from __future__ import annotations

import errno
import grp
import logging
import os
import shutil
import tempfile

from plugwire.core.errors import ConfigError, HandshakeError, PluginStartError

from ..mtls import Certificate, TLSConfig, der_to_pem, generate_cert
from .announce import Announce
from .config import ClientConfig, SecureConfig
from .errors import ChecksumMismatchError

__all__ = ["check_binary", "child_env", "gid_of", "pid_alive", "tls_for"]

_log = logging.getLogger("plugwire.grpc.goplugin.client")


def child_env(cfg: ClientConfig) -> tuple[dict[str, str], str, Certificate | None]:
    """The plugin's clean environment, its private socket directory (created here)
    and, with AutoMTLS, the host's throwaway certificate."""
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    # A zombie child of ours still "exists": look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def gid_of(group: str) -> int:
    try:
        return int(group)
    except ValueError:
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"failed to find gid from {group!r}", step="client config") from None
