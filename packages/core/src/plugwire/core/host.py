"""The host: launches plugins, tracks them, closes them all in parallel.

A :class:`Host` owns a task group for everything its plugins need in the background
(stderr readers, exit watchers, transport servers). Plugins started with
:meth:`Host.launch` and any other closable resource handed to :meth:`Host.track`
(a go-plugin client, an NRI runtime connection) are closed together, concurrently,
within :attr:`Host.close_timeout`; whatever is still running then is killed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.abc

from .controller import Controller
from .errors import ClosedError, ConfigError
from .process import PluginProcess

__all__ = ["AsyncClosable", "Host", "Plugin"]

log = logging.getLogger("plugwire.host")


@runtime_checkable
class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


class Plugin:
    """A tracked plugin: its name, controller, process (if any) and resource."""

    __slots__ = ("controller", "name", "process", "resource")

    def __init__(
        self,
        name: str,
        controller: Controller,
        process: PluginProcess | None,
        resource: AsyncClosable | None,
    ) -> None:
        self.name = name
        self.controller = controller
        self.process = process
        self.resource = resource

    def __repr__(self) -> str:
        return f"<Plugin {self.name!r} process={self.process!r}>"


class Host:
    """Launches and tracks plugins; ``async with Host() as host: ...``.

    Arguments:
        name: how this host names itself in logs and errors.
        close_timeout: the deadline for closing every plugin in parallel.
        grace: per-process grace between the polite stop and SIGKILL.
    """

    def __init__(
        self, name: str = "host", *, close_timeout: float = 10.0, grace: float = 2.0
    ) -> None:
        self.name = name
        self.close_timeout = close_timeout
        self.grace = grace
        self._plugins: dict[str, Plugin] = {}
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
    ) -> bool | None:
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
        return None

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The host's task group, for transports that serve on the host's behalf."""
        if self._tg is None or self._closed:
            raise ClosedError("host is not running", peer=self.name, step="task group")
        return self._tg

    @property
    def plugins(self) -> Mapping[str, Plugin]:
        return dict(self._plugins)

    def _register(self, plugin: Plugin) -> None:
        if plugin.name in self._plugins:
            raise ConfigError(f"a plugin named {plugin.name!r} is already tracked", peer=self.name)
        self._plugins[plugin.name] = plugin

    async def launch(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        controller: Controller | None = None,
        **options: Any,
    ) -> PluginProcess:
        """Start ``argv`` as plugin ``name`` (options as for :class:`PluginProcess`)."""
        tg = self.task_group
        if name in self._plugins:
            raise ConfigError(f"a plugin named {name!r} is already tracked", peer=self.name)
        process = PluginProcess(argv, env=env, name=name, **options)
        await process.start(tg)
        self._register(Plugin(name, controller or Controller(name), process, None))
        return process

    def track(
        self,
        name: str,
        resource: AsyncClosable,
        *,
        process: PluginProcess | None = None,
        controller: Controller | None = None,
    ) -> None:
        """Track a closable resource (and its process) so :meth:`aclose` closes it."""
        self.task_group  # noqa: B018  (raises when closed)
        self._register(Plugin(name, controller or Controller(name), process, resource))

    async def close(self, name: str) -> None:
        """Close one plugin: its resource first, then its process; forget it."""
        plugin = self._plugins.pop(name, None)
        if plugin is not None:
            await self._close_one(plugin)

    async def _close_one(self, plugin: Plugin) -> None:
        try:
            if plugin.resource is not None:
                await plugin.resource.aclose()
        except Exception:
            log.exception("closing plugin %r failed", plugin.name)
        finally:
            if plugin.process is not None:
                await plugin.process.terminate(self.grace)

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
                    "%s: plugins still open after %s s; killing", self.name, self.close_timeout
                )
                async with anyio.create_task_group() as tg:
                    for plugin in plugins:
                        if plugin.process is not None:
                            tg.start_soon(plugin.process.kill)
