"""The host: launches plugins of any family, tracks them, closes them all in parallel.

A :class:`Host` owns one task group for everything its plugins run in the background
(pipe readers, exit watchers, the servers plugins call back into). It launches
:class:`~plugwire.core.handle.PluginHandle` objects of any family —

>>> async with Host("node") as host:                                 # doctest: +SKIP
...     kv = await host.launch(goplugin.PluginClient(config))
...     nri = await host.launch(ProcessPlugin("logger", [...], env={}))
...     print(sorted(host.plugins))

— and closes every plugin concurrently on exit: each gets the shutdown sequence of
:mod:`plugwire.core.shutdown` with its family's :class:`ShutdownPolicy`, and whatever
is still open after :attr:`Host.close_timeout` is killed. Family hosts (CIPD, the NRI
runtime, the dr-provision provider host, the task plugin manager, kube) compose a
``Host`` rather than keeping a lifecycle of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.abc

from .errors import ClosedError, ConfigError
from .handle import PluginHandle
from .shutdown import ShutdownPolicy

__all__ = ["Host"]

log = logging.getLogger("plugwire.host")

H = TypeVar("H", bound=PluginHandle)


class Host:
    """Launches and tracks plugins; ``async with Host() as host: ...``.

    Arguments:
        name: how this host names itself in logs and errors.
        close_timeout: the deadline for closing every plugin in parallel; what is
            still open then is killed.
        shutdown: overrides every plugin's own shutdown policy (grace before SIGTERM,
            then before SIGKILL) when given; by default each plugin keeps its family's
            (CIPD 5 s, go-plugin 2 s...). ``grace`` overrides the first half only.
    """

    def __init__(
        self,
        name: str = "host",
        *,
        close_timeout: float = 10.0,
        grace: float | None = None,
        shutdown: ShutdownPolicy | None = None,
    ) -> None:
        if grace is not None:
            base = shutdown if shutdown is not None else ShutdownPolicy()
            shutdown = ShutdownPolicy(grace=grace, term_grace=base.term_grace)
        self.name = name
        self.close_timeout = close_timeout
        self.shutdown = shutdown
        self._plugins: dict[str, PluginHandle] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> Host:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            # The body's exception propagates as it is; background failures of the
            # host's own tasks surface from the task group.
            tg, self._tg = self._tg, None
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The host's task group, for servers that run on the host's behalf."""
        if self._tg is None or self._closed:
            raise ClosedError("host is not running", peer=self.name, step="task group")
        return self._tg

    @property
    def running(self) -> bool:
        return self._tg is not None and not self._closed

    @property
    def plugins(self) -> Mapping[str, PluginHandle]:
        """The plugins launched or tracked and not closed, by name."""
        return dict(self._plugins)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def _reserve(self, plugin: PluginHandle) -> None:
        self.task_group  # noqa: B018  (raises when closed)
        if plugin.name in self._plugins:
            raise ConfigError(
                f"a plugin named {plugin.name!r} is already tracked",
                peer=self.name,
                step="launch",
                expected="a unique plugin name",
                seen=plugin.name,
            )
        self._plugins[plugin.name] = plugin

    async def launch(self, plugin: H) -> H:
        """Start ``plugin`` in the host's task group and track it; returns it.

        Raises what the plugin's start raises (nothing is left running then), a
        :class:`ConfigError` for a duplicate name, :class:`ClosedError` after close.
        """
        self._reserve(plugin)
        try:
            await plugin.start(self.task_group)
        except BaseException:
            self._plugins.pop(plugin.name, None)
            raise
        return plugin

    def track(self, plugin: H) -> H:
        """Track a plugin that is already running (one that dialled in, say), so
        that :meth:`aclose` closes it with the others."""
        self._reserve(plugin)
        return plugin

    def forget(self, plugin: PluginHandle) -> None:
        """Stop tracking ``plugin`` without closing it (it closed by itself)."""
        if self._plugins.get(plugin.name) is plugin:
            del self._plugins[plugin.name]

    async def close(self, plugin: str | PluginHandle, grace: float | None = None) -> None:
        """Close one plugin with the shutdown sequence and forget it."""
        name = plugin if isinstance(plugin, str) else plugin.name
        handle = self._plugins.pop(name, None)
        if handle is not None:
            await self._close_one(handle, grace)

    async def _close_one(self, plugin: PluginHandle, grace: float | None = None) -> None:
        try:
            if grace is None and self.shutdown is not None:
                grace = self.shutdown.grace
            await plugin.aclose(grace)
        except Exception:
            log.exception("%s: closing plugin %r failed", self.name, plugin.name)

    async def aclose(self) -> None:
        """Close every plugin in parallel; after :attr:`close_timeout`, kill the rest."""
        self._closed = True
        plugins = list(self._plugins.values())
        self._plugins.clear()
        if not plugins:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.close_timeout) as scope:
                async with anyio.create_task_group() as tg:
                    for plugin in plugins:
                        tg.start_soon(self._close_one, plugin)
            if scope.cancelled_caught:
                log.warning(
                    "%s: closing plugins took over %s s; killing what is left",
                    self.name,
                    self.close_timeout,
                )
            # Whatever a cut-off close left running dies now; wait until reaped.
            async with anyio.create_task_group() as tg:
                for plugin in plugins:
                    if not plugin.closed:
                        plugin.kill_now()
                    process = plugin.process
                    if process is not None and process.running:
                        tg.start_soon(process.kill)
