"""Pre-installed NRI plugins: the plugin directory scan and their configuration.

Upstream ``pkg/adaptation`` launches every executable ``NN-name`` in its plugin
directory (sorted by name, so by index) and hands it ``NN-name.conf`` or
``name.conf`` from the configuration directory, if either exists.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import attrs

from plugwire.core.errors import ConfigError

from . import api

__all__ = ["InstalledPlugin", "discover", "plugin_config"]

_log = logging.getLogger("plugwire.ttrpc.nri.discovery")


@attrs.frozen
class InstalledPlugin:
    """One pre-installed plugin: its executable, index, base name and configuration."""

    path: Path
    idx: str
    base: str
    config: str = ""

    @property
    def name(self) -> str:
        return f"{self.idx}-{self.base}"


def discover(plugin_path: Path | None, config_path: Path | None = None) -> list[InstalledPlugin]:
    """The executable ``NN-name`` entries of ``plugin_path`` in index order.

    A missing directory has no plugins (logged as a WARNING naming it); an
    unreadable one, or an executable whose name is not ``NN-name``, is a
    :class:`ConfigError` (as upstream, which refuses to start). A file that is not
    executable is skipped with a WARNING naming it and why.
    """
    if plugin_path is None:
        return []
    try:
        entries = sorted(plugin_path.iterdir())
    except FileNotFoundError:
        _log.warning(
            "NRI plugin_path %s does not exist: no pre-installed plugins are started",
            plugin_path,
        )
        return []

    except OSError as exc:
        raise ConfigError(
            f"failed to discover plugins in {plugin_path}: {exc}", step="discover"
        ) from exc
    found = []
    for entry in entries:
        if entry.is_dir():
            continue
        if not os.access(entry, os.X_OK):
            _log.warning(
                "skipping NRI plugin %s: not executable (mode %s)",
                entry,
                _mode(entry),
            )
            continue
        try:
            idx, base = api.parse_plugin_name(entry.name)
        except ConfigError as exc:
            raise ConfigError(
                f"failed to discover plugins in {plugin_path}: {exc.message}",
                step="discover",
                expected=exc.expected,
                seen=exc.seen,
            ) from exc
        found.append(InstalledPlugin(entry, idx, base, plugin_config(config_path, idx, base)))
    return found


def plugin_config(config_path: Path | None, idx: str, base: str) -> str:
    """``idx-base.conf``, else ``base.conf`` from ``config_path``; ``""`` if neither."""
    if config_path is None:
        return ""
    for candidate in (f"{idx}-{base}.conf", f"{base}.conf"):
        try:
            return (config_path / candidate).read_text()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(
                f"failed to read configuration for plugin {idx}-{base}: {exc}",
                step="discover",
            ) from exc
    return ""


def _mode(path: Path) -> str:
    try:
        return stat.filemode(path.stat().st_mode)
    except OSError as exc:
        return f"unknown: {exc.strerror or exc}"
