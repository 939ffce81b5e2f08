"""The engine interface: how a task's sandbox is built, started, and its result read.

An :class:`Engine` turns the engine's part of the payload into a
:class:`SandboxBuilder`; plugins adjust the builder in ``build_sandbox`` (environment
variables...), :meth:`SandboxBuilder.start_sandbox` starts the task, plugins watch the
:class:`Sandbox` in ``started``, and :meth:`Sandbox.wait_for_result` gives the
:class:`ResultSet` that ``stopped`` inspects. An engine raises
:class:`~plugwire.core.tasks.errors.FeatureNotSupportedError` for what it cannot do.
:class:`~plugwire.core.tasks.local.LocalProcessEngine` is the engine that ships.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .context import TaskContext
from .errors import FeatureNotSupportedError
from .schema import JsonSchema, object_schema

__all__ = ["Engine", "ResultSet", "Sandbox", "SandboxBuilder", "SandboxOptions"]


@attrs.frozen
class SandboxOptions:
    """What :meth:`Engine.new_sandbox_builder` gets: the context and the engine's payload part."""

    context: TaskContext
    payload: Mapping[str, Any]


class ResultSet(abc.ABC):
    """The outcome of a sandbox: whether it succeeded, and access to what it left."""

    @property
    @abc.abstractmethod
    def success(self) -> bool:
        """True when the task's own execution succeeded (e.g. exit status 0, not aborted)."""

    @property
    def exit_code(self) -> int | None:
        """The exit status when the engine has one (negative: killed by that signal)."""
        return None

    @property
    def aborted(self) -> bool:
        """True when the sandbox was aborted (max run time, cancellation)."""
        return False

    async def extract_file(self, path: str) -> Path:
        """A local path to the file ``path`` (relative to the sandbox's working dir).

        Raises :class:`~plugwire.core.tasks.errors.MalformedPayloadError` for a path
        escaping the sandbox, :class:`FileNotFoundError` when there is no such file.
        """
        raise FeatureNotSupportedError("the engine cannot extract files", step="extract_file")

    async def extract_folder(self, path: str) -> Path:
        """Like :meth:`extract_file`, for a directory."""
        raise FeatureNotSupportedError("the engine cannot extract folders", step="extract_folder")

    async def dispose(self) -> None:  # noqa: B027  (optional hook)
        """Release what the result holds (working directories...)."""


class Sandbox(abc.ABC):
    """A running task."""

    @abc.abstractmethod
    async def wait_for_result(self) -> ResultSet:
        """Wait until the task ends and return its result."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Stop the task now; its result will report ``aborted``. Idempotent."""


class SandboxBuilder(abc.ABC):
    """Collects what plugins add to the sandbox before it starts."""

    def set_environment_variable(self, name: str, value: str) -> None:
        """Set ``name`` in the task's environment.

        Raises :class:`~plugwire.core.tasks.errors.NamingConflictError` when it is
        already set and :class:`FeatureNotSupportedError` when the engine has no env.
        """
        raise FeatureNotSupportedError(
            "the engine does not support environment variables", step="set_environment_variable"
        )

    @abc.abstractmethod
    async def start_sandbox(self) -> Sandbox:
        """Start the task. Raises ``MalformedPayloadError`` when the payload cannot run."""

    async def discard(self) -> None:  # noqa: B027  (optional hook)
        """Release the builder when the sandbox is never started."""


class Engine(abc.ABC):
    """Runs tasks in sandboxes."""

    def payload_schema(self) -> JsonSchema:
        """The engine's part of the task payload (merged with the plugins' parts)."""
        return object_schema()

    @abc.abstractmethod
    async def new_sandbox_builder(self, options: SandboxOptions) -> SandboxBuilder:
        """A builder for one task (called concurrently with ``new_task_plugin``)."""

    async def aclose(self) -> None:  # noqa: B027  (optional hook)
        """Release engine-wide resources."""
