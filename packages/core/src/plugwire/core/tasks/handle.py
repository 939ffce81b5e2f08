"""Task plugins as core plugin handles, and what each may call back into.

A :class:`~plugwire.core.tasks.Plugin` created in process becomes a core handle
(family ``tasks``) through :class:`TaskPluginHandle`, so the
:class:`~plugwire.core.tasks.PluginManager`'s core :class:`~plugwire.core.host.Host`
closes it like any other plugin: its graceful step is the plugin's ``aclose``.

What a task plugin may use of a task is granted through a core
:class:`~plugwire.core.Controller` (:func:`task_controller`), by capability name:

``env``
    set environment variables on the sandbox builder (``build_sandbox``),
``abort``
    abort the running sandbox (``started``),
``artifacts``
    read files and folders of the result (``stopped``: ``extract_file`` /
    ``extract_folder``).

The per-task fan-out hands each plugin the engine objects wrapped in
:class:`GuardedBuilder`, :class:`GuardedSandbox` and :class:`GuardedResult`; using a
capability that was not granted raises
:class:`~plugwire.core.controller.CapabilityDeniedError` naming the plugin and the
capability. An out-of-process plugin's requests (environment variables in its stage
reply, an abort flag) are applied through the same guards on the host, so it gets the
same typed error.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import anyio.abc

from ..controller import Controller
from ..handle import BasePluginHandle
from .engine import ResultSet, Sandbox, SandboxBuilder
from .plugin import Plugin

__all__ = [
    "TASK_CAPABILITIES",
    "GuardedBuilder",
    "GuardedResult",
    "GuardedSandbox",
    "TaskPluginHandle",
    "task_controller",
]

_logger = logging.getLogger("plugwire.tasks.manager")

#: Every capability a task plugin can be granted (all are, unless told otherwise).
TASK_CAPABILITIES: tuple[str, ...] = ("env", "abort", "artifacts")


def task_controller(plugin: str, grants: Collection[str] | None = None) -> Controller:
    """The controller of task plugin ``plugin``: ``grants`` (default: every capability
    in :data:`TASK_CAPABILITIES`)."""
    names = TASK_CAPABILITIES if grants is None else tuple(grants)
    return Controller(plugin, {name: name for name in names})


class TaskPluginHandle(BasePluginHandle):
    """An in-process task :class:`~plugwire.core.tasks.Plugin` as a core handle.

    Starting it does nothing (the plugin exists already); its graceful step is
    ``plugin.aclose()`` (a failure is logged, never raised).
    """

    family = "tasks"

    def __init__(self, name: str, plugin: Plugin, *, controller: Controller | None = None):
        super().__init__(name, controller=controller)
        self.plugin = plugin

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        pass

    async def _graceful_stop(self) -> None:
        try:
            await self.plugin.aclose()
        except Exception:
            _logger.exception("closing task plugin %r failed", self.name)


class GuardedBuilder(SandboxBuilder):
    """A sandbox builder as one plugin sees it: ``env`` must be granted."""

    def __init__(self, builder: SandboxBuilder, controller: Controller) -> None:
        self._builder = builder
        self._controller = controller

    def __getattr__(self, name: str) -> Any:  # what else the engine's object offers
        return getattr(self._builder, name)

    def set_environment_variable(self, name: str, value: str) -> None:
        self._controller.require("env")
        self._builder.set_environment_variable(name, value)

    async def start_sandbox(self) -> Sandbox:
        return await self._builder.start_sandbox()


class GuardedSandbox(Sandbox):
    """A running sandbox as one plugin sees it: ``abort`` must be granted."""

    def __init__(self, sandbox: Sandbox, controller: Controller) -> None:
        self._sandbox = sandbox
        self._controller = controller

    def __getattr__(self, name: str) -> Any:  # what else the engine's object offers
        return getattr(self._sandbox, name)

    async def wait_for_result(self) -> ResultSet:
        return await self._sandbox.wait_for_result()

    async def abort(self) -> None:
        self._controller.require("abort")
        await self._sandbox.abort()


class GuardedResult(ResultSet):
    """A result set as one plugin sees it: ``artifacts`` must be granted to read files."""

    def __init__(self, result: ResultSet, controller: Controller) -> None:
        self._result = result
        self._controller = controller

    def __getattr__(self, name: str) -> Any:  # what else the engine's object offers
        return getattr(self._result, name)

    @property
    def success(self) -> bool:
        return self._result.success

    @property
    def exit_code(self) -> int | None:
        return self._result.exit_code

    @property
    def aborted(self) -> bool:
        return self._result.aborted

    @property
    def working_dir(self) -> Path | None:
        wd = getattr(self._result, "working_dir", None)
        return Path(wd) if wd is not None else None

    async def extract_file(self, path: str) -> Path:
        self._controller.require("artifacts")
        return await self._result.extract_file(path)

    async def extract_folder(self, path: str) -> Path:
        self._controller.require("artifacts")
        return await self._result.extract_folder(path)

    async def dispose(self) -> None:
        await self._result.dispose()
