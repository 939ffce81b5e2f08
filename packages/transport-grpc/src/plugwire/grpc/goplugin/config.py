"""go-plugin's configuration, parsed once at the boundary into frozen attrs.

- the plugin side: :class:`PluginEnv` (defined in :mod:`.env`, which a plugin's
  launch imports without this module): what the host set in the environment;
- the host side: :class:`ClientConfig` (how :class:`~.client.PluginClient` launches
  a plugin), :class:`ReattachConfig`, :class:`SecureConfig`.
"""

from __future__ import annotations

import hashlib
import hmac
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
from .env import EnvValueError, PluginEnv
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

#: The capability a host grants a plugin to use the go-plugin broker
#: (``GRPCBroker``: dial back into servers the host accepts).
BROKER = "broker"


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
