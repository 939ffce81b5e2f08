"""The one registry of live plugins in this process, and its last resort at exit.

Every :class:`~plugwire.core.handle.BasePluginHandle` registers itself when it starts
and leaves when it is closed. :func:`cleanup_plugins` closes whatever is left (what
go-plugin calls ``CleanupClients``); at interpreter exit, with no event loop left,
each live plugin's :meth:`~plugwire.core.handle.PluginHandle.kill_now` runs
(SIGKILL for a child process, a synchronous delete for a Kubernetes deployment).
A SIGKILLed host cannot run this; its children die by ``PR_SET_PDEATHSIG`` instead
(see :mod:`plugwire.core.process`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from .handle import PluginHandle

__all__ = ["cleanup_plugins", "live_plugins", "register", "unregister"]

log = logging.getLogger("plugwire.managed")

H = TypeVar("H")

_live: dict[int, PluginHandle] = {}
_lock = threading.Lock()


def register(plugin: PluginHandle) -> None:
    """Track ``plugin`` until :func:`unregister` (handles do this themselves)."""
    with _lock:
        _live[id(plugin)] = plugin


def unregister(plugin: PluginHandle) -> None:
    """Stop tracking ``plugin`` (it is closed); unknown plugins are ignored."""
    with _lock:
        _live.pop(id(plugin), None)


def live_plugins(kind: type[H] | None = None) -> list[H]:
    """The plugins started and not yet closed in this process (of ``kind`` if given)."""
    with _lock:
        plugins = list(_live.values())
    if kind is None:
        return plugins  # type: ignore[return-value]
    return [p for p in plugins if isinstance(p, kind)]


async def cleanup_plugins(kind: type | None = None, *, grace: float | None = None) -> None:
    """Close every live plugin (of ``kind`` if given) in parallel."""
    plugins: list[PluginHandle] = live_plugins(kind)
    if not plugins:
        return
    async with anyio.create_task_group() as tg:
        for plugin in plugins:
            tg.start_soon(_close_quietly, plugin, grace)


async def _close_quietly(plugin: PluginHandle, grace: float | None) -> None:
    try:
        await plugin.aclose(grace)
    except Exception:
        log.exception("closing %r failed", plugin)


@atexit.register
def _kill_live_at_exit() -> None:
    with _lock:
        plugins = list(_live.values())
        _live.clear()
    for plugin in plugins:
        with contextlib.suppress(Exception):
            plugin.kill_now()
