"""The per-task fan-out: every enabled plugin's task plugin for one task.

:class:`TaskPluginManager` fans each stage out to every plugin concurrently (one anyio
task group per stage) with a per-plugin stage timeout, and aggregates failures the
upstream way: fatal beats non-fatal beats the merged malformed-payload errors
(:func:`aggregate_failures`). It also enforces the lifecycle: stages in order, never
two at once, ``exception`` at most once, nothing after ``dispose``. Each plugin sees
the engine objects through its :class:`~plugwire.core.Controller` (see
:mod:`.handle`): what it was not granted raises
:class:`~plugwire.core.controller.CapabilityDeniedError`.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import anyio

from ..controller import Controller
from .context import TaskContext
from .engine import ResultSet, Sandbox, SandboxBuilder
from .errors import (
    FatalInternalError,
    MalformedPayloadError,
    NonFatalInternalError,
    PluginFailure,
    StageOrderError,
    StageTimeoutError,
    TaskPluginError,
)
from .handle import GuardedBuilder, GuardedResult, GuardedSandbox
from .plugin import TaskPlugin, TaskPluginOptions
from .reasons import ExceptionReason
from .schema import filter_payload, schema_errors

if TYPE_CHECKING:
    from .manager import PluginManager

__all__ = ["DEFAULT_STAGE_TIMEOUT", "TaskPluginManager", "aggregate_failures"]

_logger = logging.getLogger("plugwire.tasks.manager")
T = TypeVar("T")

#: Seconds a plugin may spend in one stage before it is cancelled (a fatal error).
DEFAULT_STAGE_TIMEOUT = 300.0


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

    def _controller(self, i: int) -> Controller:
        return self._manager.controller(self._names[i])

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
        await self._fan_out(
            "build_sandbox",
            lambda i, tp: tp.build_sandbox(GuardedBuilder(builder, self._controller(i))),
        )

    async def started(self, sandbox: Sandbox) -> None:
        await self._fan_out(
            "started", lambda i, tp: tp.started(GuardedSandbox(sandbox, self._controller(i)))
        )

    async def stopped(self, result: ResultSet) -> bool:
        """True only if every plugin returned True (a plugin that failed counts as False)."""
        verdicts: list[bool] = [False] * len(self._names)

        async def call(i: int, tp: TaskPlugin) -> None:
            verdict = await tp.stopped(GuardedResult(result, self._controller(i)))
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
