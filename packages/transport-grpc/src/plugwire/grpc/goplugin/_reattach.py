"""Reattaching to a running plugin (go-plugin's ``ReattachConfig``): checks, and the
pid helpers for a plugin process this host did not start."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal

import anyio

from plugwire.core.errors import HandshakeError

from .config import ClientConfig, ReattachConfig
from .plugin import GrpcPlugin

__all__ = ["kill_pid", "pid_alive", "reattach_plugins", "watch_pid"]

_log = logging.getLogger("plugwire.grpc.goplugin.client")


def reattach_plugins(
    rc: ReattachConfig, config: ClientConfig, *, peer: str
) -> dict[str, GrpcPlugin]:
    """The plugin set for ``rc``'s protocol version; raises :class:`HandshakeError` when
    this host does not speak its protocol or version."""
    if rc.protocol not in config.wires:
        raise HandshakeError(
            f"unsupported plugin protocol {rc.protocol!r}",
            peer=peer,
            step="reattach",
            expected=f"one of {list(config.wires)}",
            seen=rc.protocol,
        )
    sets = config.plugin_sets()
    if rc.protocol_version not in sets:
        raise HandshakeError(
            "incompatible API version with plugin",
            peer=peer,
            step="reattach",
            expected=f"one of {sorted(sets)}",
            seen=rc.protocol_version,
        )
    return sets[rc.protocol_version]


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


async def watch_pid(pid: int, exited: anyio.Event) -> None:
    """Set ``exited`` once ``pid`` is gone."""
    # A process we did not start: poll, there is nothing to wait on.
    while pid_alive(pid):  # noqa: ASYNC110
        await anyio.sleep(0.2)
    exited.set()


def kill_pid(pid: int, *, peer: str) -> None:
    """SIGKILL a reattached plugin that is still running."""
    if pid_alive(pid):
        _log.warning("plugin %s failed to exit gracefully", peer)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
