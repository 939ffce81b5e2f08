"""The three interfaces a task plugin implements, after taskcluster-worker's.

* :class:`PluginProvider` — registered by name; validates its configuration
  (:meth:`~PluginProvider.config_schema`) and creates the :class:`Plugin`.
* :class:`Plugin` — the worker-wide state; declares its part of the task payload
  (:meth:`~Plugin.payload_schema`) and creates one :class:`TaskPlugin` per task.
* :class:`TaskPlugin` — the per-task state; one method per lifecycle stage.

The stages run in this order: ``new_task_plugin`` (concurrently with the engine's
sandbox builder) → ``build_sandbox`` → ``started`` → ``stopped`` → ``finished``;
``exception`` may follow any stage; ``dispose`` is always last. The methods of one
task plugin never run concurrently, so task plugins need no locking. Every method has
a do-nothing default: override only the stages you need.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import anyio.abc
import attrs

from ..controller import Controller
from ..host import Host
from .context import TaskContext, TaskInfo
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder
from .reasons import ExceptionReason
from .schema import JsonSchema, object_schema

__all__ = ["Plugin", "PluginOptions", "PluginProvider", "TaskPlugin", "TaskPluginOptions"]


@attrs.frozen
class PluginOptions:
    """What :meth:`PluginProvider.new_plugin` gets: its name, its validated config, the engine.

    ``task_group`` runs the plugin's worker-wide background work (a plugin process's
    pipe readers...); it is ``host``'s, the core :class:`~plugwire.core.host.Host` the
    manager composes: a provider whose plugin is a core handle (an out-of-process
    plugin) launches it there. ``controller`` is what the plugin may use of a task
    (see :mod:`plugwire.core.tasks.handle`).
    """

    name: str
    config: Any
    engine: Engine | None = None
    task_group: anyio.abc.TaskGroup | None = None
    host: Host | None = None
    controller: Controller | None = None


@attrs.frozen
class TaskPluginOptions:
    """What :meth:`Plugin.new_task_plugin` gets: the task, its context, its payload part."""

    info: TaskInfo
    context: TaskContext
    payload: Mapping[str, Any]


class TaskPlugin:
    """Per-task state of a plugin. Every stage defaults to doing nothing.

    Raise :class:`~plugwire.core.tasks.errors.MalformedPayloadError` when the
    payload is at fault, :class:`~plugwire.core.tasks.errors.NonFatalInternalError`
    for a worker problem that should not stop the worker; any other exception is
    treated as a fatal internal error.
    """

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        """Adjust the sandbox before it starts (wait here for long preparations)."""

    async def started(self, sandbox: Sandbox) -> None:
        """The sandbox is running (start watchdogs, interactive things)."""

    async def stopped(self, result: ResultSet) -> bool:
        """The sandbox ended: inspect the result, collect artifacts.

        Return False when the task must be reported as failed.
        """
        return True

    async def finished(self, success: bool) -> None:
        """The task log is closed; ``success`` is the task's outcome."""

    async def exception(self, reason: ExceptionReason) -> None:
        """The task was resolved as an exception (best-effort uploads go here)."""

    async def dispose(self) -> None:
        """Always called last: stop background work and release resources."""


class Plugin:
    """Worker-wide state of a plugin; creates one :class:`TaskPlugin` per task."""

    def payload_schema(self) -> JsonSchema:
        """This plugin's payload properties (an object schema; merged with the others')."""
        return object_schema()

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        """Create the task plugin for one task (runs concurrently with the sandbox builder)."""
        return TaskPlugin()

    async def aclose(self) -> None:
        """Release worker-wide resources (called when the manager closes)."""


class PluginProvider(abc.ABC):
    """A named, registered factory of :class:`Plugin` objects."""

    def config_schema(self) -> JsonSchema | None:
        """The JSON Schema of this plugin's configuration; None means ``{}`` only."""
        return None

    @abc.abstractmethod
    async def new_plugin(self, options: PluginOptions) -> Plugin:
        """Create the plugin from its validated configuration."""
