"""A running plugin, of any family, as its host sees it.

Every family's host-side object — a go-plugin client, a CIPD admission plugin, an NRI
plugin connection, a dr-provision provider, an out-of-process task plugin, a
Kubernetes-deployed plugin — is a :class:`PluginHandle`: it has a name (used as the
*peer* of every error it raises), a :class:`~plugwire.core.controller.Controller`
(what it may call back), its :class:`~plugwire.core.process.PluginProcess` if it has
one, and the two lifecycle verbs :meth:`~PluginHandle.start` and
:meth:`~PluginHandle.aclose`. A :class:`~plugwire.core.host.Host` launches, tracks
and closes handles without knowing their family.

Families subclass :class:`BasePluginHandle`, which owns the lifecycle once: state,
the managed registry, ``async with`` support with a task group of its own, and the
one shutdown sequence of :mod:`plugwire.core.shutdown`. A family supplies only

- :meth:`BasePluginHandle._start` — launch and handshake,
- :meth:`BasePluginHandle._graceful_stop` — its polite request to stop,
- :meth:`BasePluginHandle._release` — closing what is left once the plugin is gone
  (channels, sockets, temporary directories).
"""

from __future__ import annotations

import abc
import logging
import math
import os
import signal
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import anyio
import anyio.abc
import attrs

from . import managed
from .controller import Controller
from .errors import ConfigError, PluginStartError
from .process import PluginProcess
from .shutdown import ShutdownPolicy, shutdown_sequence

__all__ = ["BasePluginHandle", "PluginHandle", "ProcessPlugin"]

log = logging.getLogger("plugwire.handle")

#: Seconds a handle's release step may take after the shutdown sequence.
RELEASE_TIMEOUT = 5.0


@runtime_checkable
class PluginHandle(Protocol):
    """What a host needs of a running plugin, whatever its family.

    Attributes:
        name: the plugin's name, unique within a host; errors name it as the peer.
        controller: the capabilities this plugin may call back on its host.
        process: the plugin's child process, ``None`` when the host did not start one
            (a plugin that dialled in, a reattached or a Kubernetes-deployed plugin).
    """

    @property
    def name(self) -> str: ...

    @property
    def controller(self) -> Controller: ...

    @property
    def process(self) -> PluginProcess | None: ...

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has finished."""
        ...

    async def start(self, task_group: anyio.abc.TaskGroup | None = None) -> None:
        """Launch the plugin and complete its handshake.

        Background work (pipe readers, servers, watchers) runs in ``task_group``, the
        host's; ``async with handle:`` gives a handle a task group of its own.
        Raises a :class:`~plugwire.core.errors.PlugwireError` naming the step that
        failed; on failure nothing is left running.
        """
        ...

    async def aclose(self, grace: float | None = None) -> None:
        """Stop the plugin: graceful step, ``grace`` seconds, SIGTERM, SIGKILL.

        Idempotent, shielded from cancellation, never raises for a plugin that is
        already gone.
        """
        ...

    def kill_now(self) -> None:
        """Last resort with no event loop (interpreter exit): kill without waiting."""
        ...


class BasePluginHandle(abc.ABC):
    """The lifecycle every family's handle shares (see the module docs).

    Arguments:
        name: the plugin's name (the peer in errors).
        controller: the capabilities granted to the plugin (none by default).
        shutdown: the :class:`ShutdownPolicy` used by :meth:`aclose`.
    """

    #: Which family the handle belongs to, for logs and ``plugwire`` listings.
    family: ClassVar[str] = "plugin"

    def __init__(
        self,
        name: str,
        *,
        controller: Controller | None = None,
        shutdown: ShutdownPolicy | None = None,
    ) -> None:
        if not name:
            raise ConfigError("a plugin needs a name", step="plugin handle")
        self._name = name
        self._controller = controller if controller is not None else Controller(name)
        self.shutdown = shutdown if shutdown is not None else ShutdownPolicy()
        self._process: PluginProcess | None = None
        self._started = False
        self._closing: anyio.Event | None = None
        self._closed = False
        self._own_tg: anyio.abc.TaskGroup | None = None

    # -- what the protocol asks for ------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def controller(self) -> Controller:
        return self._controller

    @property
    def process(self) -> PluginProcess | None:
        return self._process

    @property
    def peer(self) -> str:
        """How errors name this plugin."""
        return self._name

    @property
    def started(self) -> bool:
        return self._started

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def closing(self) -> bool:
        """True from the moment :meth:`aclose` begins."""
        return self._closing is not None

    async def start(self, task_group: anyio.abc.TaskGroup | None = None) -> None:
        if self._started:
            raise PluginStartError("plugin already started", peer=self.peer, step="start")
        if self._closing is not None:
            raise PluginStartError("plugin already closed", peer=self.peer, step="start")
        self._started = True
        managed.register(self)
        try:
            await self._start(task_group)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose(0)
            raise

    async def aclose(self, grace: float | None = None) -> None:
        if self._closing is not None:
            await self._closing.wait()
            return
        self._closing = anyio.Event()
        policy = self.shutdown if grace is None else attrs.evolve(self.shutdown, grace=grace)
        # Shielded, but never past the caller's deadline (a host's close_timeout)
        # nor past the policy's own bound plus time to release.
        deadline = anyio.current_time() + policy.bound + RELEASE_TIMEOUT
        outer = anyio.current_effective_deadline()
        if outer != -math.inf:
            deadline = min(deadline, outer)
        try:
            with anyio.CancelScope(shield=True, deadline=deadline) as scope:
                if self._started:
                    await shutdown_sequence(
                        self.peer,
                        graceful=self._graceful_stop,
                        process=self._process,
                        policy=policy,
                    )
                try:
                    await self._release()
                except Exception:
                    log.exception("%s: releasing resources failed", self.peer)
            if scope.cancelled_caught:
                log.warning("%s: close cut off at its deadline; killing", self.peer)
                self.kill_now()
        finally:
            managed.unregister(self)
            self._closed = True
            self._closing.set()

    def kill_now(self) -> None:
        if self._process is not None:
            self._process.kill_now()

    # -- what a family supplies -----------------------------------------------

    @abc.abstractmethod
    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Launch and handshake. Set ``self._process`` as soon as a child exists."""

    async def _graceful_stop(self) -> None:  # noqa: B027 (optional hook)
        """The family's polite request to stop (an RPC, closing stdin...)."""

    async def _release(self) -> None:  # noqa: B027 (optional hook)
        """Close what remains once the plugin is stopped. Must not block for long."""

    def _require_task_group(self, task_group: anyio.abc.TaskGroup | None) -> anyio.abc.TaskGroup:
        """``task_group``, or a :class:`ConfigError` saying how to get one."""
        if task_group is None:
            raise ConfigError(
                "this plugin runs background tasks: start it with Host.launch() or "
                "'async with', or pass a task group to start()",
                peer=self.peer,
                step="start",
            )
        return task_group

    # -- async with -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._own_tg = tg
        try:
            await self.start(tg)
        except BaseException:
            self._own_tg = None
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._own_tg = self._own_tg, None
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._started else "new"
        pid = f" pid={self._process.pid}" if self._process and self._process.running else ""
        return f"<{type(self).__name__} {self._name!r} {state}{pid}>"


class ProcessPlugin(BasePluginHandle):
    """A plugin that is just a child process (core's own family).

    Its graceful step closes stdin (when it has a pipe) and sends ``polite_signal``
    (SIGTERM by default; ``None`` to rely on stdin alone). Options are those of
    :class:`~plugwire.core.process.PluginProcess`; ``process`` is available once
    started.

    >>> plugin = ProcessPlugin("cat", ["cat"], env={}, stdin=True)   # doctest: +SKIP
    >>> await host.launch(plugin)                                    # doctest: +SKIP
    >>> await plugin.process.write_stdin(b"hi\\n")                   # doctest: +SKIP
    """

    family = "process"

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        controller: Controller | None = None,
        shutdown: ShutdownPolicy | None = None,
        polite_signal: signal.Signals | None = signal.SIGTERM,
        **process_options: Any,
    ) -> None:
        super().__init__(name, controller=controller, shutdown=shutdown)
        self._polite = polite_signal
        self._spec = PluginProcess(
            argv, env=env, name=name, polite_signal=polite_signal, **process_options
        )

    @property
    def process(self) -> PluginProcess:
        return self._spec

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        self._process = self._spec
        await self._spec.start(self._require_task_group(task_group))

    async def _graceful_stop(self) -> None:
        await self._spec.close_stdin()
        if self._polite is not None:
            self._spec.send_signal(self._polite)
        await self._spec.done.wait()
