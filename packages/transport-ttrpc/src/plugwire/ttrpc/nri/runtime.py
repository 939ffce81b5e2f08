"""Host NRI plugins from Python (upstream ``pkg/adaptation``).

:class:`Runtime` is what a container runtime embeds: it listens on the NRI socket
for external plugins (the directory is created ``0700``), launches pre-installed
plugins (``NN-name`` executables in ``plugin_path``, each on a socketpair passed as
fd 3, with only ``NRI_PLUGIN_NAME``, ``NRI_PLUGIN_IDX`` and ``NRI_PLUGIN_SOCKET=3`` in
its environment and ``NN-name.conf`` or ``name.conf`` from ``config_path`` as its
configuration), and relays lifecycle events to them in index order::

    async with Runtime("my-runtime", "1.0", socket_path=path, sync=sync, update=update) as rt:
        reply = await rt.create_container(pod, container)   # merged adjustments

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
returns the ones that failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.abc
import attrs
from google.protobuf.message import Message

from plugwire.core.errors import (
    ConfigError,
    ConnectionClosedError,
    MessageTooLargeError,
    PluginExitedError,
    PluginTimeoutError,
    PlugwireError,
    RemoteError,
)
from plugwire.core.process import PluginProcess
from plugwire.core.status import StatusCode

from . import api
from ._generated import api_pb2 as pb
from ._net import accept, listen_unix, socket_stream
from ._session import Handler, Session, open_session
from .api import Event, NriError, PluginRejectedError
from .result import Result

__all__ = ["PluginInfo", "Runtime", "SyncCallback", "SyncFn", "UpdateFn"]

log = logging.getLogger("plugwire.ttrpc.nri.runtime")

SyncCallback = Callable[
    [Sequence[pb.PodSandbox], Sequence[pb.Container]], Awaitable[list[pb.ContainerUpdate]]
]
SyncFn = Callable[[SyncCallback], Awaitable[None]]
UpdateFn = Callable[[list[pb.ContainerUpdate]], Awaitable[list[pb.ContainerUpdate]]]

M = TypeVar("M", bound=Message)

_STATE_CHANGE_FALLBACK = {
    Event.RUN_POD_SANDBOX,
    Event.POST_UPDATE_POD_SANDBOX,
    Event.STOP_POD_SANDBOX,
    Event.REMOVE_POD_SANDBOX,
    Event.POST_CREATE_CONTAINER,
    Event.START_CONTAINER,
    Event.POST_START_CONTAINER,
    Event.POST_UPDATE_CONTAINER,
    Event.REMOVE_CONTAINER,
}
_MIN_OBJS_PER_SYNC = 8


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
    def of(cls, plugin: _Plugin) -> PluginInfo:
        proc = plugin.process
        return cls(
            name=plugin.name,
            idx=plugin.idx,
            base=plugin.base,
            events=plugin.events,
            external=proc is None,
            pid=proc.pid if proc is not None else None,
        )


class _Plugin:
    def __init__(
        self, runtime: Runtime, *, idx: str = "", base: str = "", config: str = ""
    ) -> None:
        self.runtime = runtime
        self.idx = idx
        self.base = base
        self.config = config
        self.events = 0
        self.policy = pb.FailurePolicy()
        self.process: PluginProcess | None = None
        self.session: Session | None = None
        self.closed = False
        #: the runtime closed the connection (a launched plugin then exits as asked)
        self.stopping = False
        #: the runtime SIGKILLed the launched plugin
        self.killed = False
        #: registered and configured: failures from here on are the plugin's own
        self.configured = False
        self.registered = anyio.Event()
        self.registration_error: PlugwireError | None = None
        self.done = anyio.Event()
        self._stop = anyio.Event()

    @property
    def name(self) -> str:
        return f"{self.idx}-{self.base}" if self.idx or self.base else "unregistered plugin"

    # -- Runtime service (called by the plugin) ----------------------------------

    def handlers(self) -> dict[tuple[str, str], Handler]:
        async def register(data: bytes) -> bytes:
            req = pb.RegisterPluginRequest.FromString(data)
            if self.process is None:
                try:
                    api.check_plugin_name(req.plugin_name)
                    api.check_plugin_index(req.plugin_idx)
                except ConfigError as exc:
                    err = ConfigError(
                        f"plugin registered with an invalid name or index: {exc.message}",
                        peer=f"{req.plugin_idx}-{req.plugin_name}",
                        step="RegisterPlugin",
                        expected=exc.expected,
                        seen=exc.seen,
                    )
                    self.registration_error = err
                    self.registered.set()
                    raise RemoteError(str(err), code=StatusCode.INVALID_ARGUMENT) from exc
                self.base, self.idx = req.plugin_name, req.plugin_idx
                if self.session is not None:
                    self.session.client.peer = self.name
            log.info(
                "plugin %s registered (NRI version %s)", self.name, req.NRI_version or "unknown"
            )
            self.registered.set()
            return b""

        async def update_containers(data: bytes) -> bytes:
            req = pb.UpdateContainersRequest.FromString(data)
            log.info("plugin %s requested %d container update(s)", self.name, len(req.update))
            failed = await self.runtime._update(list(req.update))
            return pb.UpdateContainersResponse(failed=failed).SerializeToString()

        return {
            (api.RUNTIME_SERVICE, "RegisterPlugin"): register,
            (api.RUNTIME_SERVICE, "UpdateContainers"): update_containers,
        }

    async def serve(
        self, trunk: anyio.abc.ByteStream, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        try:
            async with open_session(
                trunk, self.handlers(), plugin_side=False, peer=self.name, stop=self._stop
            ) as session:
                self.session = session
                task_status.started()
                await session.closed.wait()
        finally:
            self.closed = True
            self.done.set()
            if not self.registered.is_set():
                self.registered.set()

    async def close(self, *, kill: bool = False) -> None:
        """Close the connection; kill a launched process (upstream ``stop``) if asked."""
        self.closed = True
        self.stopping = True
        self._stop.set()
        if self.session is not None:
            await self.session.aclose()
        if kill and self.process is not None:
            self.killed = self.process.returncode is None
            await self.process.kill()

    async def call(self, method: str, req: Message, resp_type: type[M], timeout: float) -> M:
        if self.session is None or self.closed:
            raise ConnectionClosedError("plugin connection closed", peer=self.name, step=method)
        return await self.session.call(api.PLUGIN_SERVICE, method, req, resp_type, timeout=timeout)


def _is_fatal(exc: BaseException) -> bool:
    """Upstream ``isFatalError``: the plugin did not answer (deadline, lost connection)."""
    return isinstance(exc, TimeoutError | ConnectionClosedError)


class Runtime:
    """An NRI runtime (adaptation) hosting plugins; use as an async context manager.

    Arguments:
        name, version: the runtime's identity sent in Configure.
        socket_path: where external plugins connect (``None`` with ``listen=False``).
        plugin_path: directory of pre-installed ``NN-name`` plugins (optional).
        config_path: directory of ``NN-name.conf``/``name.conf`` plugin configs.
        sync, update: the runtime's state and update callbacks (see module doc).
        registration_timeout, request_timeout: seconds (upstream: 5 and 2).
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
    ) -> None:
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
        self._plugins: list[_Plugin] = []
        self._lock = anyio.Lock()
        self._sync_lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self._listener: socket.socket | None = None
        self._accepting = anyio.CancelScope()
        self._changed = anyio.Event()
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._start_preinstalled()
            if self.listen:
                await self._start_listener()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._closing = True
        try:
            with anyio.CancelScope(shield=True):
                self._accepting.cancel()
                plugins, self._plugins = self._plugins, []
                for p in plugins:
                    await p.close()
                # launched plugins exit once their connection is gone; SIGKILL
                # those that do not within 1 s (upstream kills them at once)
                async with anyio.create_task_group() as stopper:
                    for p in plugins:
                        if p.process is not None:
                            stopper.start_soon(p.process.terminate, 1.0)
            assert self._tg is not None
            # The task group only runs background tasks (accept loop, plugin
            # connections); the body's own exception propagates as it is.
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
        finally:
            # closed only once the accept loop is gone
            if self._listener is not None:
                self._listener.close()
                self._listener = None
                if self.socket_path is not None:
                    with contextlib.suppress(OSError):
                        self.socket_path.unlink()
        return None

    @property
    def plugins(self) -> list[PluginInfo]:
        """The active plugins in invocation (index) order."""
        return [PluginInfo.of(p) for p in self._plugins if not p.closed]

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

    # -- plugin start-up ------------------------------------------------------------

    async def _start_listener(self) -> None:
        assert self.socket_path is not None and self._tg is not None
        path = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._listener = listen_unix(path)
        except OSError as exc:
            raise ConfigError(
                f"failed to create socket {str(path)!r}: {exc.strerror or exc}",
                step="listen",
                seen=str(path),
            ) from exc
        self._tg.start_soon(self._accept_loop, self._listener)

    async def _accept_loop(self, listener: socket.socket) -> None:
        assert self._tg is not None
        with self._accepting:
            while True:
                try:
                    conn = await accept(listener)
                except (OSError, ValueError):  # closed under us
                    break
                self._tg.start_soon(self._admit_external, conn)
        log.info("stopped accepting plugin connections")

    async def _admit_external(self, conn: socket.socket) -> None:
        plugin = _Plugin(self)
        try:
            await self._start_plugin(plugin, await socket_stream(conn))
        except PlugwireError as exc:
            log.error("failed to start external plugin: %s", exc)
            return
        async with self._sync_lock:
            try:
                await self._sync(self._sync_callback(plugin))
            except PlugwireError as exc:
                log.error("failed to synchronize plugin %s: %s", plugin.name, exc)
                await plugin.close()
                return
        async with self._lock:
            self._plugins.append(plugin)
            self._sort()
        log.info("plugin %s connected and synchronized", plugin.name)
        self._notify()

    async def _start_plugin(self, plugin: _Plugin, trunk: anyio.abc.ByteStream) -> None:
        assert self._tg is not None
        await self._tg.start(plugin.serve, trunk)
        self._tg.start_soon(self._watch, plugin)
        with anyio.move_on_after(self.registration_timeout):
            await plugin.registered.wait()
        if plugin.registration_error is not None:
            # let the refusal reach the plugin (which then hangs up) before closing
            with anyio.move_on_after(1.0):
                await plugin.done.wait()
            await plugin.close(kill=True)
            raise plugin.registration_error
        if not plugin.registered.is_set() or plugin.closed:
            timed_out = not plugin.registered.is_set()
            exited = await self._exit_error(plugin, "RegisterPlugin") if not timed_out else None
            await plugin.close(kill=True)
            if exited is not None:
                raise exited
            if timed_out:
                raise PluginTimeoutError(
                    "plugin registration timed out",
                    peer=plugin.name,
                    step="RegisterPlugin",
                    expected=f"registration within {self.registration_timeout} s",
                )
            raise ConnectionClosedError(
                "failed to register plugin, connection closed",
                peer=plugin.name,
                step="RegisterPlugin",
            )
        try:
            rpl = await plugin.call(
                "Configure",
                pb.ConfigureRequest(
                    config=plugin.config,
                    runtime_name=self.name,
                    runtime_version=self.version,
                    registration_timeout=_millis(self.registration_timeout),
                    request_timeout=_millis(self.request_timeout),
                    NRI_version=self.nri_version,
                ),
                pb.ConfigureResponse,
                self.request_timeout,
            )
        except PlugwireError as exc:
            await plugin.close(kill=True)
            raise NriError(
                f"failed to configure plugin: {exc}", peer=plugin.name, step="Configure"
            ) from exc
        events = rpl.events & 0xFFFFFFFF
        if events and events & ~api.VALID_EVENTS:
            await plugin.close(kill=True)
            raise NriError(
                f"invalid plugin events: 0x{events & ~api.VALID_EVENTS:x}",
                peer=plugin.name,
                step="Configure",
                expected=f"a subset of 0x{api.VALID_EVENTS:x}",
                seen=f"0x{events:x}",
            )
        plugin.events = events or api.VALID_EVENTS
        plugin.policy = rpl.failure_policy
        plugin.configured = True

    async def _watch(self, plugin: _Plugin) -> None:
        await plugin.done.wait()
        log.info("connection to plugin %s closed", plugin.name)
        self._notify()

    async def _exit_error(
        self, plugin: _Plugin, step: str, wait: float = 1.0
    ) -> PluginExitedError | None:
        """Why a launched plugin whose connection ended died (status and stderr
        tail), if it exits unasked within ``wait`` seconds; ``None`` otherwise."""
        proc = plugin.process
        if proc is None:
            return None
        with anyio.move_on_after(wait):
            await proc.done.wait()
        if proc.error is None:
            return None
        return proc.exit_error(step)

    async def _watch_process(self, plugin: _Plugin, proc: PluginProcess) -> None:
        """Report a running pre-installed plugin that dies unasked, with its exit
        status and last stderr lines (start-up failures are reported by the caller)."""
        rc = await proc.wait()
        if self._closing or not plugin.configured:
            return
        if (rc == -signal.SIGKILL and plugin.killed) or (rc == 0 and plugin.stopping):
            return  # what the runtime asked for
        err = proc.exit_error("run")
        log.log(logging.ERROR if rc else logging.WARNING, "pre-installed plugin %s", err)

    def _discover(self) -> list[tuple[Path, str, str, str]]:
        if self.plugin_path is None:
            return []
        try:
            entries = sorted(self.plugin_path.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(
                f"failed to discover plugins in {self.plugin_path}: {exc}", step="discover"
            ) from exc
        found = []
        for entry in entries:
            if entry.is_dir() or not os.access(entry, os.X_OK):
                continue
            try:
                idx, base = api.parse_plugin_name(entry.name)
            except ConfigError as exc:
                raise ConfigError(
                    f"failed to discover plugins in {self.plugin_path}: {exc.message}",
                    step="discover",
                    expected=exc.expected,
                    seen=exc.seen,
                ) from exc
            found.append((entry, idx, base, self._plugin_config(idx, base)))
        return found

    def _plugin_config(self, idx: str, base: str) -> str:
        if self.config_path is None:
            return ""
        for candidate in (f"{idx}-{base}.conf", f"{base}.conf"):
            try:
                return (self.config_path / candidate).read_text()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ConfigError(
                    f"failed to read configuration for plugin {idx}-{base}: {exc}",
                    step="discover",
                ) from exc
        return ""

    async def _launch(self, path: Path, plugin: _Plugin, child: socket.socket) -> PluginProcess:
        """Start a pre-installed plugin with ``child`` as its fd 3 and only the
        three NRI variables in its environment (upstream ``newLaunchedPlugin``).

        The child's stderr becomes ``plugwire.plugin.NN-name`` log records, it dies
        with the runtime (``PR_SET_PDEATHSIG``), and its exit status and last stderr
        lines make up the :class:`PluginExitedError` reported if it dies unasked.
        Raises :class:`PluginStartError` when ``path`` cannot be executed.
        """
        assert self._tg is not None
        proc = PluginProcess(
            [path],
            env={
                api.PLUGIN_NAME_ENV: plugin.base,
                api.PLUGIN_IDX_ENV: plugin.idx,
                api.PLUGIN_SOCKET_ENV: "3",
            },
            name=plugin.name,
            capture_stdout=False,
            fd_map={3: child.fileno()},
            # closing the connection is the polite request; SIGKILL after the grace
            polite_signal=None,
        )
        await proc.start(self._tg)
        self._tg.start_soon(self._watch_process, plugin, proc)
        return proc

    async def _start_preinstalled(self) -> None:
        started: list[_Plugin] = []
        for path, idx, base, config in self._discover():
            plugin = _Plugin(self, idx=idx, base=base, config=config)
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                plugin.process = await self._launch(path, plugin, child)
            except PlugwireError as exc:
                log.warning("failed to start pre-installed plugin %s: %s", plugin.name, exc)
                parent.close()
                continue
            finally:
                child.close()
            trunk = await socket_stream(parent)
            try:
                await self._start_plugin(plugin, trunk)
            except PlugwireError as exc:
                log.warning("failed to start pre-installed plugin %s: %s", plugin.name, exc)
                continue
            started.append(plugin)
        if not started:
            return
        synced: list[_Plugin] = []

        async def sync_all(
            pods: Sequence[pb.PodSandbox], ctrs: Sequence[pb.Container]
        ) -> list[pb.ContainerUpdate]:
            updates: list[pb.ContainerUpdate] = []
            for plugin in started:
                try:
                    updates.extend(await self._synchronize(plugin, pods, ctrs))
                except PlugwireError as exc:
                    log.warning(
                        "failed to synchronize pre-installed plugin %s: %s", plugin.name, exc
                    )
                    await plugin.close(kill=True)
                    continue
                synced.append(plugin)
            return updates

        async with self._sync_lock:
            await self._sync(sync_all)
        async with self._lock:
            self._plugins.extend(synced)
            self._sort()
        self._notify()

    def _sort(self) -> None:
        self._plugins = sorted((p for p in self._plugins if not p.closed), key=lambda p: p.idx)

    def _sync_callback(self, plugin: _Plugin) -> SyncCallback:
        async def callback(
            pods: Sequence[pb.PodSandbox], ctrs: Sequence[pb.Container]
        ) -> list[pb.ContainerUpdate]:
            return await self._synchronize(plugin, pods, ctrs)

        return callback

    async def _synchronize(
        self, plugin: _Plugin, pods: Sequence[pb.PodSandbox], ctrs: Sequence[pb.Container]
    ) -> list[pb.ContainerUpdate]:
        """Upstream's split Synchronize: shrink chunks while a message is too large."""
        pods_left, ctrs_left = list(pods), list(ctrs)
        per_pods, per_ctrs = len(pods_left), len(ctrs_left)
        while True:
            more = len(pods_left) > per_pods or len(ctrs_left) > per_ctrs
            req = pb.SynchronizeRequest(
                pods=pods_left[:per_pods], containers=ctrs_left[:per_ctrs], more=more
            )
            try:
                rpl = await plugin.call(
                    "Synchronize", req, pb.SynchronizeResponse, self.request_timeout
                )
            except MessageTooLargeError as exc:
                per_pods, per_ctrs = _shrink(per_pods, per_ctrs, exc)
                if per_pods < 0:
                    await plugin.close()
                    raise NriError(
                        "failed to synchronize plugin with split messages",
                        peer=plugin.name,
                        step="Synchronize",
                    ) from exc
                continue
            if not more:
                return list(rpl.update)
            if rpl.update or rpl.more != more:
                await plugin.close()
                raise NriError(
                    "plugin does not handle split sync requests",
                    peer=plugin.name,
                    step="Synchronize",
                    expected="more=true and no updates on a partial sync",
                    seen=f"more={rpl.more}, {len(rpl.update)} updates",
                )
            pods_left, ctrs_left = pods_left[per_pods:], ctrs_left[per_ctrs:]
            per_pods, per_ctrs = min(per_pods, len(pods_left)), min(per_ctrs, len(ctrs_left))

    async def _update(self, updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        return list(await self._update_fn(updates))

    # -- relaying events --------------------------------------------------------------

    async def _relay(
        self, plugin: _Plugin, event: Event, req: Message, resp_type: type[M]
    ) -> M | None:
        """One plugin call with upstream's error handling; None when skipped/dropped."""
        if not plugin.events & event.bit or plugin.closed:
            return None
        method = event.pretty_name
        try:
            try:
                return await plugin.call(method, req, resp_type, self.request_timeout)
            except RemoteError as exc:
                if exc.code != StatusCode.UNIMPLEMENTED or event not in _STATE_CHANGE_FALLBACK:
                    raise
                log.warning(
                    "plugin %s uses deprecated StateChange instead of a dedicated %s RPC call",
                    plugin.name,
                    method,
                )
                state = pb.StateChangeEvent(event=event.name)
                state.pod.CopyFrom(getattr(req, "pod"))  # noqa: B009
                if "container" in req.DESCRIPTOR.fields_by_name:
                    state.container.CopyFrom(getattr(req, "container"))  # noqa: B009
                await plugin.call("StateChange", state, pb.Empty, self.request_timeout)
                return resp_type()
        except PlugwireError as exc:
            if not _is_fatal(exc):
                if isinstance(exc, RemoteError):
                    raise NriError(
                        f"plugin {plugin.name} failed to handle {method} request: {exc.message}",
                        peer=plugin.name,
                        step=method,
                    ) from exc
                raise
            if not (isinstance(exc, TimeoutError) and plugin.policy.keep_connected):
                log.error(
                    "closing plugin %s, failed to handle %s request: %s", plugin.name, method, exc
                )
                await plugin.close(kill=True)
            if plugin.policy.fail_request:
                raise NriError(
                    f"plugin {plugin.name} failed to handle {method} request: {exc}",
                    peer=plugin.name,
                    step=method,
                ) from exc
            log.warning(
                "plugin %s failed to handle %s request, proceeding without it", plugin.name, method
            )
            return None

    async def _each(
        self, event: Event, req: Message, resp_type: type[M]
    ) -> list[tuple[_Plugin, M]]:
        replies = []
        for plugin in list(self._plugins):
            rpl = await self._relay(plugin, event, req, resp_type)
            if rpl is not None:
                replies.append((plugin, rpl))
        return replies

    def _drop_closed(self) -> None:
        before = len(self._plugins)
        self._sort()
        if len(self._plugins) != before:
            self._notify()

    async def _event(self, event: Event, req: Message, resp_type: type[Message]) -> None:
        async with self._lock:
            try:
                await self._each(event, req, resp_type)
            finally:
                self._drop_closed()

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.RUN_POD_SANDBOX, pb.RunPodSandboxRequest(pod=pod), pb.RunPodSandboxResponse
        )

    async def update_pod_sandbox(
        self,
        pod: pb.PodSandbox,
        overhead: pb.LinuxResources | None = None,
        resources: pb.LinuxResources | None = None,
    ) -> None:
        req = pb.UpdatePodSandboxRequest(pod=pod)
        if overhead is not None:
            req.overhead_linux_resources.CopyFrom(overhead)
        if resources is not None:
            req.linux_resources.CopyFrom(resources)
        await self._event(Event.UPDATE_POD_SANDBOX, req, pb.UpdatePodSandboxResponse)

    async def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.POST_UPDATE_POD_SANDBOX,
            pb.PostUpdatePodSandboxRequest(pod=pod),
            pb.PostUpdatePodSandboxResponse,
        )

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.STOP_POD_SANDBOX, pb.StopPodSandboxRequest(pod=pod), pb.StopPodSandboxResponse
        )

    async def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.REMOVE_POD_SANDBOX,
            pb.RemovePodSandboxRequest(pod=pod),
            pb.RemovePodSandboxResponse,
        )

    async def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> pb.CreateContainerResponse:
        """Relay CreateContainer in index order; the merged, validated adjustments.

        Raises :class:`ConflictError`, :class:`PluginRejectedError` or
        :class:`NriError` (a plugin failed the request).
        """
        async with self._lock:
            try:
                req = pb.CreateContainerRequest(pod=pod, container=container)
                validators = [
                    p
                    for p in self._plugins
                    if not p.closed and p.events & Event.VALIDATE_CONTAINER_ADJUSTMENT.bit
                ]
                validate: pb.ValidateContainerAdjustmentRequest | None = None
                if validators:
                    validate = pb.ValidateContainerAdjustmentRequest(pod=pod, container=container)
                result = Result.for_create(req)
                for plugin in list(self._plugins):
                    if plugin.closed:
                        continue
                    if validate is not None:
                        validate.plugins.add(name=plugin.base, index=plugin.idx)
                    rpl = await self._relay(
                        plugin, Event.CREATE_CONTAINER, req, pb.CreateContainerResponse
                    )
                    if rpl is not None:
                        result.apply(rpl, plugin.name)
                response = result.create_response()
                if validate is not None:
                    validate.adjust.CopyFrom(response.adjust)
                    validate.update.extend(response.update)
                    validate.owners.CopyFrom(result.owners.to_proto())
                    await self._validate(validators, validate)
                return response
            finally:
                self._drop_closed()

    async def _validate(
        self, validators: list[_Plugin], req: pb.ValidateContainerAdjustmentRequest
    ) -> None:
        errors: list[PlugwireError] = []

        async def one(plugin: _Plugin) -> None:
            event = Event.VALIDATE_CONTAINER_ADJUSTMENT
            try:
                rpl = await plugin.call(
                    event.pretty_name,
                    req,
                    pb.ValidateContainerAdjustmentResponse,
                    self.request_timeout,
                )
            except PlugwireError as exc:
                if _is_fatal(exc):
                    await plugin.close(kill=True)
                errors.append(
                    NriError(f"validator plugin {plugin.name} failed: {exc}", peer=plugin.name)
                )
                return
            if rpl.reject:
                reason = rpl.reason or "unknown rejection reason"
                errors.append(
                    PluginRejectedError(
                        f'validator "{plugin.name}" rejected container adjustment, '
                        f"reason: {reason}",
                        peer=plugin.name,
                        step=event.pretty_name,
                    )
                )

        async with anyio.create_task_group() as tg:
            for plugin in validators:
                if not plugin.closed:
                    tg.start_soon(one, plugin)
        if errors:
            raise errors[0]

    async def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_CREATE_CONTAINER,
            pb.PostCreateContainerRequest(pod=pod, container=container),
            pb.PostCreateContainerResponse,
        )

    async def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.START_CONTAINER,
            pb.StartContainerRequest(pod=pod, container=container),
            pb.StartContainerResponse,
        )

    async def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_START_CONTAINER,
            pb.PostStartContainerRequest(pod=pod, container=container),
            pb.PostStartContainerResponse,
        )

    async def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> pb.UpdateContainerResponse:
        """Relay UpdateContainer; the merged updates (the requested container's last)."""
        async with self._lock:
            try:
                req = pb.UpdateContainerRequest(
                    pod=pod, container=container, linux_resources=resources
                )
                result = Result.for_update(req)
                for plugin, rpl in await self._each(
                    Event.UPDATE_CONTAINER, req, pb.UpdateContainerResponse
                ):
                    result.apply(rpl, plugin.name)
                return result.update_response()
            finally:
                self._drop_closed()

    async def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_UPDATE_CONTAINER,
            pb.PostUpdateContainerRequest(pod=pod, container=container),
            pb.PostUpdateContainerResponse,
        )

    async def stop_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> pb.StopContainerResponse:
        """Relay StopContainer; the merged updates plugins asked for other containers."""
        async with self._lock:
            try:
                req = pb.StopContainerRequest(pod=pod, container=container)
                result = Result.for_stop()
                for plugin, rpl in await self._each(
                    Event.STOP_CONTAINER, req, pb.StopContainerResponse
                ):
                    result.apply(rpl, plugin.name)
                return result.stop_response()
            finally:
                self._drop_closed()

    async def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.REMOVE_CONTAINER,
            pb.RemoveContainerRequest(pod=pod, container=container),
            pb.RemoveContainerResponse,
        )


def _millis(seconds: float) -> int:
    return 0 if math.isinf(seconds) else int(seconds * 1000)


def _shrink(pods: int, ctrs: int, exc: MessageTooLargeError) -> tuple[int, int]:
    """Upstream ``recalcObjsPerSyncMsg``: (-1, -1) when it cannot shrink further."""
    if pods + ctrs <= _MIN_OBJS_PER_SYNC or exc.size <= exc.limit:
        return -1, -1
    factor = min(exc.limit / exc.size, 0.9)
    pods, ctrs = int(pods * factor), int(ctrs * factor)
    if pods + ctrs < _MIN_OBJS_PER_SYNC:
        pods = ctrs = _MIN_OBJS_PER_SYNC // 2
    return pods, ctrs
