"""go-plugin's configuration, parsed once at the boundary into frozen attrs.

- the plugin side: :meth:`PluginEnv.from_env` reads the variables the host sets
  (``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT``, ``PLUGIN_UNIX_SOCKET_DIR``/``GROUP``,
  ``PLUGIN_MULTIPLEX_GRPC``, ``PLUGIN_CLIENT_CERT``, ``PLUGIN_PROTOCOL_VERSIONS``);
  a bad value raises :class:`EnvValueError` naming the variable, what was expected
  and what was seen. Server, listener, multiplexer and broker code take the result
  (a :class:`~plugwire.grpc._listen.ListenConfig` for sockets), never an env dict.
- the host side: :class:`ClientConfig` (how :class:`~.client.PluginClient` launches
  a plugin), :class:`ReattachConfig`, :class:`SecureConfig`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from plugwire.core.address import Address
from plugwire.core.controller import Controller
from plugwire.core.errors import ConfigError
from plugwire.core.handshake import Handshake

from .._listen import ListenConfig
from ..mtls import TLSConfig
from .plugin import GrpcPlugin
from .stdio import BytesWriter

if TYPE_CHECKING:
    # shutdown loads processes and anyio: a plugin (which parses PluginEnv here at
    # start-up) never needs it.
    from plugwire.core.shutdown import ShutdownPolicy

__all__ = [
    "BROKER",
    "ClientConfig",
    "EnvValueError",
    "ListenConfig",
    "PluginEnv",
    "ReattachConfig",
    "SecureConfig",
]

_log = logging.getLogger("plugwire.grpc.goplugin.config")

#: The capability a host grants a plugin to use the go-plugin broker
#: (``GRPCBroker``: dial back into servers the host accepts).
BROKER = "broker"


class EnvValueError(ConfigError):
    """An environment variable go-plugin defines has a value that does not parse.

    ``variable`` names it; ``expected`` and ``seen`` say what was wrong.
    """

    def __init__(self, variable: str, *, expected: str, seen: object) -> None:
        super().__init__(
            f"bad value for {variable}", step=f"env {variable}", expected=expected, seen=seen
        )
        self.variable = variable


def _go_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``: ``None`` when ``value`` is not a Go bool."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _port(environ: Mapping[str, str], variable: str) -> int:
    raw = environ.get(variable) or ""
    if not raw:
        return 0
    try:
        port = int(raw)
    except ValueError:
        raise EnvValueError(variable, expected="a port number", seen=raw) from None
    if not 0 <= port <= 65535:
        raise EnvValueError(variable, expected="a port number in 0..65535", seen=raw)
    return port


@attrs.frozen(kw_only=True)
class PluginEnv:
    """What the host told the plugin in its environment (see the module docstring).

    Attributes:
        listen: where the plugin (and its broker) listen.
        protocol_versions: the app protocol versions the host offers.
        client_cert: the host's PEM certificate for AutoMTLS (``None``: not asked).
        multiplex_asked: ``PLUGIN_MULTIPLEX_GRPC`` was set (the announce line then
            answers its 7th field).
        multiplex: it parsed as a true Go bool (broker multiplexing on).
        wires: the wires a plugwire host offered in ``PLUGWIRE_WIRES``, preferred
            first (``()``: no offer, a Go host; see :mod:`.wires`).
    """

    listen: ListenConfig = attrs.field(factory=ListenConfig)
    protocol_versions: tuple[int, ...] = ()
    client_cert: str | None = None
    multiplex_asked: bool = False
    multiplex: bool = False
    wires: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PluginEnv:
        """Parse ``environ`` (default ``os.environ``) once.

        Raises :class:`EnvValueError` for a port that is not a number or a minimum
        above the maximum. A version in ``PLUGIN_PROTOCOL_VERSIONS`` that is not a
        number is skipped with a warning, as go-plugin does.
        """
        env = os.environ if environ is None else environ
        low = _port(env, "PLUGIN_MIN_PORT")
        high = _port(env, "PLUGIN_MAX_PORT")
        if low > high:
            raise EnvValueError(
                "PLUGIN_MIN_PORT",
                expected=f"at most PLUGIN_MAX_PORT ({high})",
                seen=low,
            )
        versions: list[int] = []
        for part in env.get("PLUGIN_PROTOCOL_VERSIONS", "").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                versions.append(int(part))
            except ValueError:
                _log.warning("host sent invalid plugin version %r", part)
        mux = env.get("PLUGIN_MULTIPLEX_GRPC") or ""
        from .wires import offered_wires

        return cls(
            wires=offered_wires(env),
            listen=ListenConfig(
                socket_dir=env.get("PLUGIN_UNIX_SOCKET_DIR") or None,
                socket_group=env.get("PLUGIN_UNIX_SOCKET_GROUP") or None,
                min_port=low,
                max_port=high,
            ),
            protocol_versions=tuple(versions),
            client_cert=env.get("PLUGIN_CLIENT_CERT") or None,
            multiplex_asked=bool(mux),
            multiplex=_go_bool(mux) is True,
        )


@attrs.frozen
class SecureConfig:
    """Check the plugin binary before launch: ``checksum`` is its ``hash_name`` digest."""

    checksum: bytes
    hash_name: str = "sha256"

    def check(self, path: str | os.PathLike[str]) -> bool:
        """Whether the file's digest equals :attr:`checksum` (constant-time compare)."""
        if not self.checksum:
            raise ConfigError("SecureConfig has no checksum", step="secure config")
        try:
            digest = hashlib.new(self.hash_name)
        except ValueError:
            raise ConfigError(
                "unknown hash", step="secure config", expected="a hashlib name", seen=self.hash_name
            ) from None
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return hmac.compare_digest(digest.digest(), self.checksum)


@attrs.frozen
class ReattachConfig:
    """Enough to reconnect to a running plugin: what :meth:`PluginClient.reattach_config` returns.

    ``test``: the plugin is not ours to kill (only the Shutdown RPC is sent).
    """

    protocol_version: int
    address: Address
    protocol: str = "grpc"
    pid: int | None = None
    test: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON shape Terraform-style tools pass around (``TF_REATTACH_PROVIDERS``):
        ``{"Protocol", "ProtocolVersion", "Pid", "Test", "Addr": {"Network", "String"}}``."""
        return {
            "Protocol": self.protocol,
            "ProtocolVersion": self.protocol_version,
            "Pid": self.pid or 0,
            "Test": self.test,
            "Addr": {"Network": self.address.network, "String": self.address.address},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReattachConfig:
        """Parse :meth:`to_json`'s shape; raises :class:`ConfigError` when it does not fit."""
        try:
            addr = data["Addr"]
            network, address = str(addr["Network"]), str(addr["String"])
            if network not in ("unix", "tcp"):
                raise ValueError(f"network {network!r}")
            return cls(
                protocol_version=int(data.get("ProtocolVersion", 1)),
                address=Address(network, address),  # type: ignore[arg-type]
                protocol=str(data.get("Protocol", "grpc")),
                pid=int(data["Pid"]) or None if data.get("Pid") else None,
                test=bool(data.get("Test", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                "malformed reattach config",
                step="reattach",
                expected='{"Protocol", "ProtocolVersion", "Pid", "Addr": {"Network", "String"}}',
                seen=f"{exc!r} in {dict(data)!r}",
            ) from None


def _versioned(value: Mapping[int, Mapping[str, GrpcPlugin]]) -> dict[int, dict[str, GrpcPlugin]]:
    return {int(k): dict(v) for k, v in value.items()}


def _plugins(value: Mapping[str, GrpcPlugin]) -> dict[str, GrpcPlugin]:
    return dict(value)


def _strings(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


def _wires(value: Sequence[str]) -> tuple[str, ...]:
    from .wires import KNOWN_WIRES

    wires = tuple(value)
    if not wires or isinstance(value, str) or any(w not in KNOWN_WIRES for w in wires):
        raise ConfigError(
            "bad wires",
            step="client config",
            expected=f"a non-empty tuple of {list(KNOWN_WIRES)}, preferred first",
            seen=value,
        )
    return wires


def _argv(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """How :class:`PluginClient` launches and talks to a plugin (see the module docstring).

    Exactly one of ``cmd`` and ``reattach``. ``plugins`` are offered at every version
    of ``handshake.protocol_versions`` unless ``versioned_plugins`` is given.
    ``inherit_env``: also pass the host's environment (go-plugin does by default;
    plugwire starts plugins with a clean one). Every started client is in core's
    managed registry (:func:`~plugwire.core.managed.cleanup_plugins`, killed at
    interpreter exit); ``managed`` is kept for go-plugin's vocabulary. ``controller``:
    the capabilities granted to the plugin (default: :data:`BROKER`); without
    ``broker``, the plugin's calls into broker servers of this host fail with
    ``PERMISSION_DENIED``. ``kill_grace``: the grace of the shutdown sequence
    (Shutdown RPC, then SIGTERM, then SIGKILL), 2 s like go-plugin.

    ``wires``: the wires this host accepts, preferred first (see :mod:`.wires`).
    The default ``("ttrpc", "grpc")`` offers ttrpc to plugwire plugins and takes
    gRPC from everyone else; ``("grpc",)`` refuses ttrpc (no offer is sent: plain
    go-plugin); ``("ttrpc",)`` forces it (a plugin answering ``grpc`` fails the
    handshake). ttrpc is only offered when ``plugwire-ttrpc`` is installed, without
    TLS (``auto_mtls``/``tls``), without ``multiplex``, and when every plugin in
    ``plugins``/``versioned_plugins`` can be dispensed over it; forcing it where it
    cannot be offered raises :class:`ConfigError` at start.
    """

    handshake: Handshake
    plugins: Mapping[str, GrpcPlugin] = attrs.field(factory=dict, converter=_plugins)
    versioned_plugins: Mapping[int, Mapping[str, GrpcPlugin]] = attrs.field(
        factory=dict, converter=_versioned
    )
    cmd: Sequence[str] | None = attrs.field(default=None, converter=_argv)
    reattach: ReattachConfig | None = None
    secure_config: SecureConfig | None = None
    tls: TLSConfig | None = None
    auto_mtls: bool = False
    multiplex: bool = False
    start_timeout: float = 60.0
    kill_grace: float = 2.0
    min_port: int = 10000
    max_port: int = 25000
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_strings)
    inherit_env: bool = False
    cwd: str | None = None
    sync_stdout: BytesWriter | None = None
    sync_stderr: BytesWriter | None = None
    allowed_protocols: tuple[str, ...] = ("grpc",)
    unix_socket_group: str | None = None
    name: str | None = None
    managed: bool = False
    grpc_options: Sequence[tuple[str, Any]] = ()
    controller: Controller | None = None
    wires: tuple[str, ...] = attrs.field(default=("ttrpc", "grpc"), converter=_wires)

    @property
    def shutdown_policy(self) -> ShutdownPolicy:
        """The :class:`ShutdownPolicy` of clients with this config."""
        from plugwire.core.shutdown import ShutdownPolicy

        return ShutdownPolicy(grace=self.kill_grace)

    def plugin_sets(self) -> dict[int, dict[str, GrpcPlugin]]:
        sets = {v: dict(p) for v, p in self.versioned_plugins.items()}
        for version in self.handshake.protocol_versions:
            sets.setdefault(version, dict(self.plugins))
        return sets
