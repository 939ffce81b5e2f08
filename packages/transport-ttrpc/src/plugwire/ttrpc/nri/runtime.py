"""Host NRI plugins from Python (upstream ``pkg/adaptation``).

:class:`Runtime` is what a container runtime embeds: it listens on the NRI socket
for external plugins (the directory is created ``0700``), launches pre-installed
plugins (``NN-name`` executables in ``plugin_path``, each on a socketpair passed as
fd 3, with only ``NRI_PLUGIN_NAME``, ``NRI_PLUGIN_IDX`` and ``NRI_PLUGIN_SOCKET=3`` in
its environment and ``NN-name.conf`` or ``name.conf`` from ``config_path`` as its
configuration, see :mod:`.discovery`), and relays lifecycle events to them in index
order (:mod:`.relay`)::

    async with Runtime("my-runtime", "1.0", socket_path=path, sync=sync, update=update) as rt:
        reply = await rt.create_container(pod, container)   # merged adjustments

Each plugin connection is an :class:`~plugwire.ttrpc.nri.NriPlugin` (a core plugin
handle) run by the runtime's :class:`plugwire.core.Host`: pre-installed plugins are
launched through it, external ones tracked once registered, and closing the runtime
closes them all in parallel (connection closed, grace, SIGTERM, SIGKILL).

Behaviour follows upstream: a plugin that misses the registration timeout is closed
and killed; replies are merged with conflict detection
(:class:`~plugwire.ttrpc.nri.ConflictError`); validators see the merged result
(:class:`~plugwire.ttrpc.nri.PluginRejectedError`); a plugin that times out or
disconnects is dropped and the operation continues (unless its failure policy asks
to fail the request); any other plugin error fails the operation
(:class:`~plugwire.ttrpc.nri.NriError`); events a plugin answers with Unimplemented
are retried as the legacy ``StateChange``.

``sync(callback)`` is called when plugins need the runtime's state: it must call
``await callback(pods, containers)`` (and may hold its own lock meanwhile).
``update(updates)`` applies unsolicited container updates requested by plugins and
returns the ones that failed. What a plugin may call back is its controller's:
``grant(name)`` returns the capabilities (``register_plugin``,
``update_containers``) plugin ``name`` gets, all by default; a call it was not
granted is answered PERMISSION_DENIED with the
:class:`~plugwire.core.CapabilityDeniedError` naming plugin and capability.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType

import anyio
import attrs

from plugwire.core.errors import ConfigError, PluginTimeoutError, PlugwireError
from plugwire.core.host import Host

from . import api
from ._generated import api_pb2 as pb
from ._net import accept, listen_unix
from .discovery import discover
from .plugin import NRI_SHUTDOWN, NriPlugin
from .registration import (
    REGISTER_PLUGIN,
    UPDATE_CONTAINERS,
    GrantFn,
    RegistrationConfig,
    synchronize,
)
from .relay import EventRelay

__all__ = ["PluginInfo", "Runtime", "SyncCallback", "SyncFn", "UpdateFn"]

log = logging.getLogger("plugwire.ttrpc.nri.runtime")

SyncCallback = Callable[
    [Sequence[pb.PodSandbox], Sequence[pb.Container]], Awaitable[list[pb.ContainerUpdate]]
]
SyncFn = Callable[[SyncCallback], Awaitable[None]]
UpdateFn = Callable[[list[pb.ContainerUpdate]], Awaitable[list[pb.ContainerUpdate]]]


async def _empty_sync(callback: SyncCallback) -> None:
    await callback([], [])


async def _refuse_updates(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
    log.warning("no update callback configured: %d container update(s) failed", len(updates))
    return list(updates)


@attrs.frozen
class PluginInfo:
    """A connected plugin as the runtime sees it: ``name`` is ``idx-base``,
    ``events`` the subscribed event mask, ``external`` False for pre-installed
    plugins (which have a ``pid``)."""

    name: str
    idx: str
    base: str
    events: int
    external: bool
    pid: int | None

    @classmethod
    def of(cls, plugin: NriPlugin) -> PluginInfo:
        proc = plugin.process
        return cls(
            name=plugin.name,
            idx=plugin.idx,
            base=plugin.base,
            events=plugin.events,
            external=proc is None,
            pid=proc.pid if proc is not None else None,
        )


class Runtime(EventRelay):
    """An NRI runtime (adaptation) hosting plugins; use as an async context manager.

    Arguments:
        name, version: the runtime's identity sent in Configure.
        socket_path: where external plugins connect (``None`` with ``listen=False``).
        plugin_path: directory of pre-installed ``NN-name`` plugins (optional).
        config_path: directory of ``NN-name.conf``/``name.conf`` plugin configs.
        sync, update: the runtime's state and update callbacks (see module doc).
        registration_timeout, request_timeout: seconds (upstream: 5 and 2).
        grant: the capabilities a plugin (by ``idx-name``) may call back; all of
            :data:`~plugwire.ttrpc.nri.CAPABILITIES` by default.
        close_timeout: closing every plugin in parallel may take this long.
        host: a core :class:`~plugwire.core.Host` to share with other families (it
            runs the listener and the plugins; the caller enters and closes it, and
            closing the runtime closes only its own plugins). By default the runtime
            has a host of its own.
    """

    def __init__(
        self,
        name: str,
        version: str,
        *,
        socket_path: str | os.PathLike[str] | None = api.DEFAULT_SOCKET_PATH,
        plugin_path: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        sync: SyncFn | None = None,
        update: UpdateFn | None = None,
        registration_timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT,
        request_timeout: float = api.DEFAULT_REQUEST_TIMEOUT,
        listen: bool = True,
        nri_version: str = api.NRI_MODULE_VERSION,
        grant: GrantFn | None = None,
        close_timeout: float = 10.0,
        host: Host | None = None,
    ) -> None:
        super().__init__()
        self._shared_host = host
        self.name = name
        self.version = version
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self.plugin_path = Path(plugin_path) if plugin_path is not None else None
        self.config_path = Path(config_path) if config_path is not None else None
        self._sync = sync or _empty_sync
        self._update_fn = update or _refuse_updates
        self.registration_timeout = registration_timeout
        self.request_timeout = request_timeout
        self.listen = listen and self.socket_path is not None
        self.nri_version = nri_version
        self.close_timeout = close_timeout
        self._grant = grant
        self._sync_lock = anyio.Lock()
        self._host: Host | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._accepting = anyio.CancelScope()
        self._accept_done: anyio.Event | None = None
        self._changed = anyio.Event()
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------

    @property
    def host(self) -> Host:
        """The core host running this runtime's plugins (while the runtime runs)."""
        if self._host is None:
            raise ConfigError("the runtime is not running", peer=self.name, step="host")
        return self._host

    async def __aenter__(self) -> Runtime:
        async with contextlib.AsyncExitStack() as stack:
            if self._shared_host is not None:
                self._host = self._shared_host
            else:
                self._host = await stack.enter_async_context(
                    Host(
                        f"NRI runtime {self.name}",
                        close_timeout=self.close_timeout,
                        shutdown=NRI_SHUTDOWN,
                    )
                )
            stack.push_async_callback(self.aclose)
            await self._start_preinstalled()
            if self.listen:
                await self._start_listener()
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The host's task group only runs background tasks (accept loop, plugin
        # connections); the body's own exception propagates as it is.
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Stop accepting connections (the socket file is removed) and close every
        plugin in parallel: connection closed, then (launched plugins) grace,
        SIGTERM, SIGKILL. Leaving the ``async with`` block does this."""
        if self._closing:
            return
        self._closing = True
        with anyio.CancelScope(shield=True):
            self._accepting.cancel()
            if self._accept_done is not None:
                await self._accept_done.wait()
            mine, self._plugins = self._plugins, []
            if self._host is not None and self._shared_host is None:
                await self._host.aclose()
            elif self._host is not None:
                host = self._host
                with anyio.move_on_after(self.close_timeout):
                    async with anyio.create_task_group() as tg:
                        for plugin in mine:
                            if plugin.name in host:
                                tg.start_soon(host.close, plugin)
                            else:
                                tg.start_soon(plugin.aclose)
        self._notify()

    @property
    def plugins(self) -> list[PluginInfo]:
        """The active plugins in invocation (index) order."""
        return [PluginInfo.of(p) for p in self._plugins if not p.gone]

    async def wait_for_plugins(self, count: int, timeout: float = 10.0) -> list[PluginInfo]:
        """Wait until ``count`` plugins are active; PluginTimeoutError otherwise."""
        with anyio.move_on_after(timeout):
            while len(self.plugins) < count:
                changed = self._changed
                await changed.wait()
        active = self.plugins
        if len(active) < count:
            raise PluginTimeoutError(
                f"only {len(active)} of {count} plugins connected",
                step="wait for plugins",
                expected=f"{count} plugins within {timeout} s",
                seen=[p.name for p in active],
            )
        return active

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- plugins ------------------------------------------------------------------------

    def _new_plugin(self, **where: object) -> NriPlugin:
        config = RegistrationConfig(
            runtime_name=self.name,
            runtime_version=self.version,
            registration_timeout=self.registration_timeout,
            request_timeout=self.request_timeout,
            nri_version=self.nri_version,
        )
        return NriPlugin(
            config,
            capabilities={REGISTER_PLUGIN: config, UPDATE_CONTAINERS: self._update},
            grant=self._grant,
            on_disconnect=self._disconnected,
            **where,  # type: ignore[arg-type]
        )

    def _disconnected(self, plugin: NriPlugin) -> None:
        self._notify()

    def _track(self, plugin: NriPlugin) -> None:
        """Track a registered external plugin in the host under a unique name."""
        host = self.host
        n = 1
        while plugin.name in host:
            old = host.plugins[plugin.name]
            if isinstance(old, NriPlugin) and old.gone:
                host.forget(old)  # a stale connection: its close is under way
                host.task_group.start_soon(old.aclose)
            else:
                n += 1
                plugin.disambiguate(n)
        host.track(plugin)

    async def _drop(self, plugin: NriPlugin, *, kill: bool = False) -> None:
        if kill:
            await plugin.kill()
        if self._host is not None:
            self._host.forget(plugin)
        await plugin.aclose()

    def _removed(self, plugins: list[NriPlugin]) -> None:
        self._notify()
        if self._closing or self._host is None:
            return
        for plugin in plugins:
            self._host.task_group.start_soon(self._drop, plugin)

    async def _update(self, updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        return list(await self._update_fn(updates))

    # -- external plugins -------------------------------------------------------------

    async def _start_listener(self) -> None:
        assert self.socket_path is not None
        path = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            listener = listen_unix(path)
        except OSError as exc:
            raise ConfigError(
                f"failed to create socket {str(path)!r}: {exc.strerror or exc}",
                step="listen",
                seen=str(path),
            ) from exc
        self._accept_done = anyio.Event()
        self.host.task_group.start_soon(self._accept_loop, listener, path)

    async def _accept_loop(self, listener: socket.socket, path: Path) -> None:
        try:
            with self._accepting:
                while True:
                    try:
                        conn = await accept(listener)
                    except (OSError, ValueError):  # closed under us
                        break
                    self.host.task_group.start_soon(self._admit_external, conn)
        finally:
            # closed only once the accept loop is gone
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            assert self._accept_done is not None
            self._accept_done.set()
            log.info("stopped accepting plugin connections")

    async def _admit_external(self, conn: socket.socket) -> None:
        plugin = self._new_plugin(connection=conn)
        try:
            await plugin.start(self.host.task_group)
        except PlugwireError as exc:
            log.error("failed to start external plugin: %s", exc)
            return
        try:
            async with self._sync_lock:
                try:
                    await self._sync(self._sync_callback(plugin))
                except PlugwireError as exc:
                    log.error("failed to synchronize plugin %s: %s", plugin.name, exc)
                    await plugin.aclose()
                    return
            async with self._lock:
                if self._closing:
                    await plugin.aclose()
                    return
                self._track(plugin)
                self._plugins.append(plugin)
                self._sort()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await plugin.aclose()
            raise
        log.info("plugin %s connected and synchronized", plugin.name)
        self._notify()

    def _sync_callback(self, plugin: NriPlugin) -> SyncCallback:
        async def callback(
            pods: Sequence[pb.PodSandbox], ctrs: Sequence[pb.Container]
        ) -> list[pb.ContainerUpdate]:
            return await synchronize(plugin, pods, ctrs, self.request_timeout)

        return callback

    # -- pre-installed plugins ----------------------------------------------------------

    async def _start_preinstalled(self) -> None:
        started: list[NriPlugin] = []
        for installed in discover(self.plugin_path, self.config_path):
            plugin = self._new_plugin(installed=installed)
            try:
                await self.host.launch(plugin)
            except PlugwireError as exc:
                log.warning("failed to start pre-installed plugin %s: %s", plugin.name, exc)
                continue
            started.append(plugin)
        if not started:
            return
        synced: list[NriPlugin] = []

        async def sync_all(
            pods: Sequence[pb.PodSandbox], ctrs: Sequence[pb.Container]
        ) -> list[pb.ContainerUpdate]:
            updates: list[pb.ContainerUpdate] = []
            for plugin in started:
                try:
                    updates.extend(await synchronize(plugin, pods, ctrs, self.request_timeout))
                except PlugwireError as exc:
                    log.warning(
                        "failed to synchronize pre-installed plugin %s: %s", plugin.name, exc
                    )
                    await self._drop(plugin, kill=True)
                    continue
                synced.append(plugin)
            return updates

        async with self._sync_lock:
            await self._sync(sync_all)
        async with self._lock:
            self._plugins.extend(synced)
            self._sort()
        self._notify()
