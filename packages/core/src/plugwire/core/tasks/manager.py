"""The plugin manager: many plugins behind one interface.

:class:`PluginManager` enables the plugins named in its configuration (minus those
listed in ``disabled``), validates each one's configuration against its provider's
schema, merges their payload schemas, and creates a :class:`TaskPluginManager` per
task. The task plugin manager fans each stage out to every plugin concurrently (one
anyio task group per stage) with a per-plugin stage timeout, and aggregates failures
the upstream way: fatal beats non-fatal beats the merged malformed-payload errors.
It also enforces the lifecycle: stages in order, never two at once, ``exception`` at
most once, nothing after ``dispose``.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc

from ..errors import ConfigError
from .context import TaskContext
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder
from .errors import (
    FatalInternalError,
    MalformedPayloadError,
    NonFatalInternalError,
    PluginFailure,
    StageOrderError,
    StageTimeoutError,
    TaskPluginError,
)
from .plugin import Plugin, PluginOptions, TaskPlugin, TaskPluginOptions
from .reasons import ExceptionReason
from .registry import Registry, default_registry
from .schema import (
    JsonSchema,
    check_schema,
    filter_payload,
    merge_payload_schemas,
    schema_errors,
)

__all__ = [
    "DEFAULT_STAGE_TIMEOUT",
    "PluginManager",
    "TaskPluginManager",
    "aggregate_failures",
    "manager_config_schema",
]

_logger = logging.getLogger("plugwire.tasks.manager")
T = TypeVar("T")

#: Seconds a plugin may spend in one stage before it is cancelled (a fatal error).
DEFAULT_STAGE_TIMEOUT = 300.0


def manager_config_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of the manager configuration for every plugin in ``registry``.

    Like upstream: a mapping from plugin name to that plugin's configuration, plus
    ``disabled``, a list of plugin names. A plugin is enabled when it has an entry and
    is not disabled.
    """
    reg = registry or default_registry
    providers = reg.providers()
    props: dict[str, Any] = {
        "disabled": {"type": "array", "items": {"enum": sorted(providers)}, "uniqueItems": True}
    }
    for name, provider in providers.items():
        props[name] = provider.config_schema() or {"type": "object"}
    return {"type": "object", "properties": props, "additionalProperties": False}


def aggregate_failures(stage: str, failures: Sequence[PluginFailure]) -> TaskPluginError | None:
    """One error for a stage's plugin failures, or None when there are none.

    Fatal (:class:`FatalInternalError`, and any exception that is not a
    :class:`TaskPluginError`) beats :class:`NonFatalInternalError`, which beats the
    merged :class:`MalformedPayloadError`. The result keeps every failure in
    ``failures`` and names each in its message.
    """
    if not failures:
        return None
    fatal: list[PluginFailure] = []
    nonfatal: list[PluginFailure] = []
    malformed: list[PluginFailure] = []
    for f in failures:
        if isinstance(f.error, MalformedPayloadError):
            malformed.append(f)
        elif isinstance(f.error, NonFatalInternalError):
            nonfatal.append(f)
        else:
            fatal.append(f)
    if fatal or nonfatal:
        cls = FatalInternalError if fatal else NonFatalInternalError
        lines = "\n - ".join(f.describe() for f in failures)
        return cls(
            f"stage {stage!r} failed:\n - {lines}",
            step=stage,
            peer=", ".join(dict.fromkeys(f.plugin for f in (fatal or nonfatal))),
            failures=failures,
        )
    merged = MalformedPayloadError.merge(
        [
            MalformedPayloadError(
                *(f.error.messages if isinstance(f.error, MalformedPayloadError) else ()),
                failures=[f],
            )
            for f in malformed
        ],
        step=stage,
    )
    merged.peer = ", ".join(dict.fromkeys(f.plugin for f in malformed))
    return merged


async def _call_with_timeout(
    name: str, stage: str, timeout: float, fn: Callable[[], Awaitable[T]]
) -> tuple[T | None, PluginFailure | None]:
    """Run ``fn`` with a deadline; turn exceptions and the deadline into a PluginFailure."""
    result: T | None = None
    failure: PluginFailure | None = None
    with anyio.move_on_after(timeout) as scope:
        try:
            result = await fn()
        except Exception as exc:
            failure = PluginFailure(name, stage, exc)
    if scope.cancel_called and (scope.cancelled_caught or failure is not None):
        err = StageTimeoutError(
            f"plugin {name!r} did not finish stage {stage!r} within {timeout:g} s;"
            " it was cancelled",
            peer=name,
            step=stage,
            expected=f"<= {timeout:g} s",
            seen="still running",
        )
        if failure is not None:
            err.__cause__ = failure.error
        return None, PluginFailure(name, stage, err)
    return result, failure


class PluginManager(Plugin):
    """The enabled plugins, behind the :class:`Plugin` interface.

    Create it with :meth:`open` (an async context manager that closes the plugins);
    then :meth:`new_task` per task.
    """

    def __init__(
        self,
        plugins: Mapping[str, Plugin],
        *,
        stage_timeout: float = DEFAULT_STAGE_TIMEOUT,
    ) -> None:
        if not (stage_timeout > 0 and math.isfinite(stage_timeout)):
            raise ConfigError(
                "stage timeout must be a positive number of seconds",
                step="plugin manager",
                expected="> 0",
                seen=stage_timeout,
            )
        self._plugins = dict(plugins)
        self.stage_timeout = stage_timeout
        self._schemas = {name: dict(p.payload_schema()) for name, p in self._plugins.items()}
        self._payload_schema = merge_payload_schemas(self._schemas)
        self._with_engine: dict[str, dict[str, Any]] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: Mapping[str, Any],
        *,
        registry: Registry | None = None,
        engine: Engine | None = None,
        stage_timeout: float = DEFAULT_STAGE_TIMEOUT,
        start_timeout: float | None = None,
    ) -> AsyncIterator[PluginManager]:
        """Enable, configure and create the plugins ``config`` names; close them on exit.

        Each plugin gets ``start_timeout`` seconds to be created (default: the larger
        of ``stage_timeout`` and 60 s: starting a plugin process takes a while).

        ``config`` maps plugin names to their configuration; ``disabled`` lists plugins
        to leave out. Raises :class:`~plugwire.core.errors.ConfigError` (or its
        subclasses :class:`~plugwire.core.tasks.errors.RegistryError`,
        :class:`~plugwire.core.tasks.errors.SchemaConflictError`) for an unknown
        plugin, a configuration failing its schema, a plugin failing to start (every
        failure listed), or conflicting payload schemas.
        """
        reg = registry or default_registry
        enabled = _enabled(config, reg)
        # The plugins' background work runs in this group. It is entered by hand so
        # that errors (ours and the body's) propagate as they are, not in an
        # ExceptionGroup; its tasks are only pipe readers and watchers.
        plugin_tg = anyio.create_task_group()
        await plugin_tg.__aenter__()
        try:
            start = start_timeout if start_timeout is not None else max(stage_timeout, 60.0)
            async with cls._open(
                config, enabled, reg, engine, stage_timeout, start, plugin_tg
            ) as m:
                yield m
        finally:
            plugin_tg.cancel_scope.cancel()
            await plugin_tg.__aexit__(None, None, None)

    @classmethod
    @contextlib.asynccontextmanager
    async def _open(
        cls,
        config: Mapping[str, Any],
        enabled: list[str],
        reg: Registry,
        engine: Engine | None,
        stage_timeout: float,
        start_timeout: float,
        plugin_tg: anyio.abc.TaskGroup,
    ) -> AsyncIterator[PluginManager]:
        plugins: dict[str, Plugin] = {}
        failures: list[PluginFailure] = []

        async def create(name: str) -> None:
            provider = reg.get(name)
            plugin, failure = await _call_with_timeout(
                name,
                "new_plugin",
                start_timeout,
                lambda: provider.new_plugin(PluginOptions(name, config[name], engine, plugin_tg)),
            )
            if failure is not None:
                failures.append(failure)
            elif not isinstance(plugin, Plugin):
                failures.append(
                    PluginFailure(
                        name,
                        "new_plugin",
                        TypeError(f"new_plugin returned {type(plugin).__name__}, not a Plugin"),
                    )
                )
            else:
                plugins[name] = plugin

        async with anyio.create_task_group() as tg:
            for name in enabled:
                tg.start_soon(create, name)
        try:
            if failures:
                lines = "\n - ".join(f.describe() for f in sorted(failures, key=lambda f: f.plugin))
                raise ConfigError(
                    f"plugin instantiation failed:\n - {lines}",
                    step="new_plugin",
                    peer=", ".join(sorted(f.plugin for f in failures)),
                )
            manager = cls({n: plugins[n] for n in enabled}, stage_timeout=stage_timeout)
        except BaseException:
            await _close_all(plugins, stage_timeout)
            raise
        try:
            yield manager
        finally:
            await manager.aclose()

    @property
    def names(self) -> tuple[str, ...]:
        """The enabled plugins, in configuration order."""
        return tuple(self._plugins)

    @property
    def plugins(self) -> Mapping[str, Plugin]:
        return dict(self._plugins)

    def payload_schema(self) -> JsonSchema:
        """The merged payload schema of every enabled plugin."""
        return self._payload_schema

    def schema_with_engine(self, engine_schema: JsonSchema) -> dict[str, Any]:
        """The plugins' payload schemas merged with an engine's (owner ``engine``).

        Raises :class:`~plugwire.core.tasks.errors.SchemaConflictError` on a conflict.
        The result is cached per engine schema.
        """
        key = json.dumps(engine_schema, sort_keys=True, default=repr)
        merged = self._with_engine.get(key)
        if merged is None:
            merged = merge_payload_schemas({"engine": engine_schema, **self._schemas})
            self._with_engine[key] = merged
        return merged

    def payload_schemas(self) -> dict[str, JsonSchema]:
        """Each enabled plugin's own payload schema, by name."""
        return dict(self._schemas)

    def new_task(self, options: TaskPluginOptions) -> TaskPluginManager:
        """A :class:`TaskPluginManager` for one task; call its stages in order.

        ``options.payload`` is the whole task payload: each plugin gets its own part.
        """
        return TaskPluginManager(self, options)

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        """Create and return a :class:`TaskPluginManager` whose plugins are all created.

        Raises the aggregated creation error; use :meth:`new_task` to keep the
        managers of plugins that could be created (so their ``exception`` and
        ``dispose`` still run).
        """
        tpm = self.new_task(options)
        await tpm.new_task_plugin()
        return tpm

    async def aclose(self) -> None:
        """Close every plugin (concurrently, each bounded by the stage timeout)."""
        plugins, self._plugins = self._plugins, {}
        await _close_all(plugins, self.stage_timeout)


async def _close_all(plugins: Mapping[str, Plugin], timeout: float) -> None:
    async def close(name: str, plugin: Plugin) -> None:
        _, failure = await _call_with_timeout(name, "close", timeout, plugin.aclose)
        if failure is not None:
            _logger.error("closing task plugin failed: %s", failure.describe())

    with anyio.CancelScope(shield=True):
        async with anyio.create_task_group() as tg:
            for name, plugin in plugins.items():
                tg.start_soon(close, name, plugin)


def _enabled(config: Mapping[str, Any], reg: Registry) -> list[str]:
    if not isinstance(config, Mapping):
        raise ConfigError(
            "task-plugin configuration must be an object",
            step="plugin config",
            expected="a mapping of plugin name to configuration",
            seen=type(config).__name__,
        )
    known = reg.names()
    disabled = config.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise ConfigError(
            "'disabled' must be a list of plugin names",
            step="plugin config",
            expected="a list of strings",
            seen=disabled,
        )
    for name in [*disabled, *(k for k in config if k != "disabled")]:
        if name not in reg:
            raise ConfigError(
                f"unknown task plugin {name!r} in configuration",
                peer=name,
                step="plugin config",
                expected=f"one of {known}",
                seen=name,
            )
    enabled = [k for k in config if k != "disabled" and k not in disabled]
    for name in enabled:
        schema = reg.get(name).config_schema() or {"type": "object"}
        check_schema(schema, owner=name, what="config schema")
        messages = schema_errors(schema, config[name], root=f"config.{name}")
        if messages:
            raise ConfigError(
                f"configuration of task plugin {name!r} is invalid:\n - " + "\n - ".join(messages),
                peer=name,
                step="plugin config",
                expected="a value matching the plugin's config schema",
                seen=config[name],
            )
    return enabled


class _State(enum.IntEnum):
    CREATED = 0
    NEW_TASK_PLUGIN = 1
    BUILD_SANDBOX = 2
    STARTED = 3
    STOPPED = 4
    FINISHED = 5


_STATE_OF = {
    "new_task_plugin": _State.NEW_TASK_PLUGIN,
    "build_sandbox": _State.BUILD_SANDBOX,
    "started": _State.STARTED,
    "stopped": _State.STOPPED,
    "finished": _State.FINISHED,
}


class TaskPluginManager(TaskPlugin):
    """Every enabled plugin's task plugin for one task, behind the :class:`TaskPlugin` interface.

    Each stage method calls that stage on every plugin concurrently and raises the
    aggregated :class:`~plugwire.core.tasks.errors.TaskPluginError` when any plugin
    failed (the other plugins still ran it). A plugin whose ``new_task_plugin`` failed
    (its payload part invalid, or it raised) takes no further part. Calling a stage out
    of order, while another runs, or after ``dispose`` raises
    :class:`~plugwire.core.tasks.errors.StageOrderError`.
    """

    def __init__(self, manager: PluginManager, options: TaskPluginOptions) -> None:
        self._manager = manager
        self._options = options
        self._names = manager.names
        self._task_plugins: list[TaskPlugin] = [TaskPlugin() for _ in self._names]
        self._state = _State.CREATED
        self._busy: str | None = None
        self._exception_done = False
        self._disposed = False
        #: Seconds each stage took, by stage name (for reports).
        self.timings: dict[str, float] = {}

    @property
    def context(self) -> TaskContext:
        return self._options.context

    @property
    def disposed(self) -> bool:
        return self._disposed

    def _enter(self, stage: str) -> None:
        if self._busy is not None:
            raise StageOrderError(
                f"stage {stage!r} called while stage {self._busy!r} is running",
                step=stage,
                expected="one stage at a time",
                seen=f"{self._busy} running",
            )
        if self._disposed:
            raise StageOrderError(
                f"stage {stage!r} called after dispose",
                step=stage,
                expected="nothing after dispose",
            )
        if stage in _STATE_OF:
            want = _State(self._state + 1) if self._state < _State.FINISHED else None
            if self._exception_done or want is None or _STATE_OF[stage] != want:
                raise StageOrderError(
                    f"stage {stage!r} called out of order",
                    step=stage,
                    expected=want.name.lower() if want and not self._exception_done else "dispose",
                    seen=stage,
                )
            self._state = want
        elif stage == "exception":
            if self._exception_done or self._state == _State.CREATED:
                raise StageOrderError(
                    "stage 'exception' called "
                    + ("twice" if self._exception_done else "before new_task_plugin"),
                    step=stage,
                    expected="exception at most once, after new_task_plugin",
                )
            self._exception_done = True
        self._busy = stage

    async def _fan_out(
        self, stage: str, call: Callable[[int, TaskPlugin], Awaitable[T]]
    ) -> list[T | None]:
        self._enter(stage)
        if stage == "dispose":
            self._disposed = True
        started = time.monotonic()
        try:
            n = len(self._names)
            results: list[T | None] = [None] * n
            failures: list[PluginFailure | None] = [None] * n
            timeout = self._manager.stage_timeout

            async def one(i: int) -> None:
                plugin = self._task_plugins[i]
                results[i], failures[i] = await _call_with_timeout(
                    self._names[i], stage, timeout, lambda: call(i, plugin)
                )

            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i, name=f"{self._names[i]}.{stage}")
            found = [f for f in failures if f is not None]
            for f in found:
                if isinstance(f.error, MalformedPayloadError):  # the task's fault
                    _logger.info("task %s: %s", self.context.task_id, f.describe())
                else:
                    _logger.warning("task %s: %s", self.context.task_id, f.describe())
                    self.context.log_error(f"unhandled worker error: {f.describe()}")
            error = aggregate_failures(stage, found)
            if error is not None:
                raise error
            return results
        finally:
            self.timings[stage] = time.monotonic() - started
            self._busy = None

    async def new_task_plugin(self) -> None:
        """Create every plugin's task plugin from its own part of the payload."""
        payload = self._options.payload
        plugins = self._manager.plugins

        async def create(i: int, _base: TaskPlugin) -> None:
            name = self._names[i]
            schema = self._manager.payload_schemas()[name]
            part = filter_payload(schema, payload)
            messages = schema_errors(schema, part)
            if messages:
                raise MalformedPayloadError(*messages, peer=name, step="new_task_plugin")
            tp = await plugins[name].new_task_plugin(
                TaskPluginOptions(self._options.info, self._options.context, part)
            )
            if not isinstance(tp, TaskPlugin):
                raise TypeError(f"new_task_plugin returned {type(tp).__name__}, not a TaskPlugin")
            self._task_plugins[i] = tp

        await self._fan_out("new_task_plugin", create)

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        await self._fan_out("build_sandbox", lambda _i, tp: tp.build_sandbox(builder))

    async def started(self, sandbox: Sandbox) -> None:
        await self._fan_out("started", lambda _i, tp: tp.started(sandbox))

    async def stopped(self, result: ResultSet) -> bool:
        """True only if every plugin returned True (a plugin that failed counts as False)."""
        verdicts: list[bool] = [False] * len(self._names)

        async def call(i: int, tp: TaskPlugin) -> None:
            verdict = await tp.stopped(result)
            if not isinstance(verdict, bool):
                raise TypeError(f"stopped() returned {verdict!r}, not a bool")
            verdicts[i] = verdict

        await self._fan_out("stopped", call)
        return all(verdicts)

    async def finished(self, success: bool) -> None:
        await self._fan_out("finished", lambda _i, tp: tp.finished(success))

    async def exception(self, reason: ExceptionReason) -> None:
        await self._fan_out("exception", lambda _i, tp: tp.exception(reason))

    async def dispose(self) -> None:
        """Dispose every task plugin; after this no stage may be called.

        Any failure here is fatal (upstream: dispose may not return errors other than
        internal ones); a :class:`NonFatalInternalError` stays non-fatal.
        """
        if self._disposed:
            raise StageOrderError("dispose called twice", step="dispose", expected="once")
        try:
            await self._fan_out("dispose", lambda _i, tp: tp.dispose())
        except MalformedPayloadError as exc:
            raise FatalInternalError(
                f"dispose may not report a malformed payload: {exc}",
                step="dispose",
                peer=exc.peer,
                failures=exc.failures,
            ) from exc
