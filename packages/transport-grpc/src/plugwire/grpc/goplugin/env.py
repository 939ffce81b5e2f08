"""What a go-plugin host tells its plugin in the environment, parsed once.

:meth:`PluginEnv.from_env` reads the variables the host sets (``PLUGIN_MIN_PORT``/
``PLUGIN_MAX_PORT``, ``PLUGIN_UNIX_SOCKET_DIR``/``GROUP``, ``PLUGIN_MULTIPLEX_GRPC``,
``PLUGIN_CLIENT_CERT``, ``PLUGIN_PROTOCOL_VERSIONS``); a bad value raises
:class:`EnvValueError` naming the variable, what was expected and what was seen.
Server, listener, multiplexer and broker code take the result (a
:class:`~plugwire.grpc._listen.ListenConfig` for sockets), never an env dict.

The plugin side only: a plugin's launch imports this, not the host's configuration
(:mod:`.config`, which re-exports these names).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import attrs

from plugwire.core.errors import ConfigError

from .._listen import ListenConfig

__all__ = ["EnvValueError", "PluginEnv"]

_log = logging.getLogger("plugwire.grpc.goplugin.config")


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
