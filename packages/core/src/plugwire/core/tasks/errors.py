"""Errors of the task-plugin family.

They follow taskcluster-worker's three kinds of stage failure:

* :class:`MalformedPayloadError` — the task payload is wrong (the task's fault). Many
  of them merge into one carrying every message.
* :class:`NonFatalInternalError` — the worker had a problem, but may go on.
* :class:`FatalInternalError` — something is broken: a plugin raised an unexpected
  exception, hung past its stage timeout, or a plugin reported a fatal error.

When a stage fans out to several plugins the manager aggregates their failures the
upstream way: fatal beats non-fatal beats the merged malformed-payload errors.
Every aggregated error keeps the individual failures in ``failures``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from ..errors import ConfigError, PluginTimeoutError, PlugwireError

__all__ = [
    "FatalInternalError",
    "FeatureNotSupportedError",
    "MalformedPayloadError",
    "NamingConflictError",
    "NonFatalInternalError",
    "PluginFailure",
    "PluginLoadError",
    "RegistryError",
    "SchemaConflictError",
    "StageOrderError",
    "StageTimeoutError",
    "TaskPluginError",
]


@attrs.frozen
class PluginFailure:
    """One plugin's failure in one stage: who, where, and the exception it raised."""

    plugin: str
    stage: str
    error: BaseException

    def describe(self) -> str:
        """``plugin 'x' in stage 'started': RuntimeError: boom``."""
        kind = type(self.error).__name__
        return f"plugin {self.plugin!r} in stage {self.stage!r}: {kind}: {self.error}"


class TaskPluginError(PlugwireError):
    """Root of the errors a task stage can end with.

    ``failures`` lists the individual plugin failures that were aggregated into this
    error (empty when the error was raised directly by a plugin or the engine).
    """

    def __init__(
        self,
        message: str,
        *,
        peer: str | None = None,
        step: str | None = None,
        expected: object = None,
        seen: object = None,
        failures: Sequence[PluginFailure] = (),
    ) -> None:
        super().__init__(message, peer=peer, step=step, expected=expected, seen=seen)
        self.failures = tuple(failures)


class MalformedPayloadError(TaskPluginError):
    """The task payload is invalid; ``messages`` says every way in which it is.

    Raise it from a plugin or an engine with one or more messages; the manager merges
    those of several plugins with :meth:`merge`.
    """

    def __init__(
        self,
        *messages: str,
        peer: str | None = None,
        step: str | None = None,
        failures: Sequence[PluginFailure] = (),
    ) -> None:
        if not messages:
            messages = ("malformed payload",)
        self.messages: tuple[str, ...] = tuple(messages)
        text = (
            messages[0]
            if len(messages) == 1
            else "malformed payload:\n - " + "\n - ".join(messages)
        )
        super().__init__(text, peer=peer, step=step, failures=failures)

    @classmethod
    def merge(
        cls, errors: Iterable[MalformedPayloadError], *, step: str | None = None
    ) -> MalformedPayloadError:
        """One error carrying the messages (and failures) of all ``errors``, in order."""
        errs = list(errors)
        messages = [m for e in errs for m in e.messages]
        failures = [f for e in errs for f in e.failures]
        return cls(*messages, step=step, failures=failures)


class NonFatalInternalError(TaskPluginError):
    """An internal problem that fails the task but leaves the worker usable."""


class FatalInternalError(TaskPluginError):
    """An internal problem that should stop the worker (a bug, a hang, a crash)."""


class StageTimeoutError(FatalInternalError, PluginTimeoutError):
    """A plugin did not return from a stage within the stage timeout; it was cancelled."""


class StageOrderError(TaskPluginError, RuntimeError):
    """A lifecycle method was called out of order, concurrently, or after ``dispose``."""


class RegistryError(ConfigError):
    """A plugin name is already taken, reserved, malformed or unknown."""


class PluginLoadError(RegistryError):
    """A ``plugwire.task_plugins`` entry point failed to load or is not a provider."""


class SchemaConflictError(ConfigError):
    """Two plugins (or a plugin and the engine) declare the same payload key differently.

    ``key`` is the property, ``owners`` the two plugin names.
    """

    def __init__(
        self, key: str, first: str, second: str, first_schema: object, second_schema: object
    ):
        super().__init__(
            f"payload property {key!r} is declared differently"
            f" by plugin {first!r} and plugin {second!r}",
            step="payload schema merge",
            expected=f"{first}: {first_schema}",
            seen=f"{second}: {second_schema}",
        )
        self.key = key
        self.owners = (first, second)


class FeatureNotSupportedError(TaskPluginError):
    """The engine does not support what a plugin asked of it (e.g. setting env vars)."""


class NamingConflictError(TaskPluginError):
    """A plugin set something (an env var, a mount) that was already set."""
