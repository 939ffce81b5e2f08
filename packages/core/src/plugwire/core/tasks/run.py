"""Running one task: the engine and the plugins through every stage.

:func:`run_task` follows taskcluster-worker's task run: validate the payload against
the engine's and the plugins' merged schema; create the sandbox builder and the task
plugins concurrently (the plugins are created even for an invalid payload, so that
logging plugins still see ``exception`` and ``dispose``); ``build_sandbox``; start the
sandbox; ``started``; wait for the result; ``stopped``; close the task log;
``finished``. The first failing stage resolves the task as an exception
(``malformed-payload`` for a :class:`MalformedPayloadError`, ``internal-error``
otherwise) and no later stage runs; then ``exception(reason)``; ``dispose`` always
runs last, also when the run is cancelled (reason ``canceled``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import attrs

from .context import TaskContext, TaskInfo
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder, SandboxOptions
from .errors import (
    FatalInternalError,
    MalformedPayloadError,
    StageTimeoutError,
    TaskPluginError,
)
from .manager import PluginManager, TaskPluginManager
from .plugin import TaskPluginOptions
from .reasons import ExceptionReason, Stage
from .schema import filter_payload, schema_errors

__all__ = ["StageEvent", "TaskResult", "run_task"]

_logger = logging.getLogger("plugwire.tasks.run")
T = TypeVar("T")


@attrs.frozen
class StageEvent:
    """One stage of a task run and how it went."""

    stage: Stage
    ok: bool
    seconds: float
    detail: str = ""
    error: BaseException | None = None

    def describe(self) -> str:
        status = "ok" if self.ok else f"FAILED: {type(self.error).__name__}: {self.error}"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.stage.value:<20} {status}{extra}"


@attrs.frozen
class TaskResult:
    """The outcome of :func:`run_task`.

    ``success`` is true only when no stage failed and every plugin's ``stopped``
    returned True. ``reason`` is set when the task resolved as an exception, with the
    ``error`` that caused it. ``cleanup_errors`` are failures of ``exception``,
    ``dispose`` and the engine's clean-up (they do not change the resolution).
    """

    info: TaskInfo
    success: bool
    reason: ExceptionReason | None
    error: BaseException | None
    exit_code: int | None
    events: tuple[StageEvent, ...]
    cleanup_errors: tuple[BaseException, ...] = ()

    @property
    def resolution(self) -> str:
        """``completed``, ``failed`` or ``exception`` (taskcluster's resolutions)."""
        if self.reason is not None:
            return "exception"
        return "completed" if self.success else "failed"

    @property
    def stages(self) -> list[str]:
        return [e.stage.value for e in self.events]


def _reason_for(error: BaseException) -> ExceptionReason:
    if isinstance(error, MalformedPayloadError):
        return ExceptionReason.MALFORMED_PAYLOAD
    return ExceptionReason.INTERNAL_ERROR


class _TaskRun:
    def __init__(
        self,
        manager: PluginManager,
        engine: Engine,
        payload: object,
        context: TaskContext,
        on_event: Callable[[StageEvent], None] | None,
    ) -> None:
        self.manager = manager
        self.engine = engine
        self.payload = payload
        self.context = context
        self.on_event = on_event
        self.events: list[StageEvent] = []
        self.reason: ExceptionReason | None = None
        self.error: BaseException | None = None
        self.success = False
        self.exit_code: int | None = None
        self.cleanup_errors: list[BaseException] = []
        self.tpm: TaskPluginManager | None = None
        self.builder: SandboxBuilder | None = None
        self.sandbox: Sandbox | None = None
        self.result: ResultSet | None = None
        self.schema: dict[str, Any] = {}

    def emit(
        self,
        stage: Stage,
        ok: bool,
        seconds: float,
        detail: str = "",
        error: BaseException | None = None,
    ) -> None:
        event = StageEvent(stage, ok, seconds, detail, error)
        self.events.append(event)
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("task %s: %s", self.context.task_id, event.describe())
        if self.on_event is not None:
            self.on_event(event)

    def resolve(self, reason: ExceptionReason, error: BaseException | None) -> None:
        if self.reason is not None:
            return  # never change a resolution
        self.reason = reason
        self.error = error
        self.success = False
        if isinstance(error, MalformedPayloadError):
            for message in error.messages:
                self.context.log_error(message)
        elif error is not None:
            self.context.log_error(f"{type(error).__name__}: {error}")

    @staticmethod
    def _wrap(stage: Stage, exc: Exception) -> BaseException:
        if isinstance(exc, TaskPluginError):
            return exc
        err = FatalInternalError(
            f"engine failed in stage {stage.value!r}: {type(exc).__name__}: {exc}",
            peer="engine",
            step=stage.value,
        )
        err.__cause__ = exc
        return err

    async def stage(
        self,
        stage: Stage,
        fn: Callable[[], Awaitable[T]],
        detail: Callable[[Any], str] | None = None,
    ) -> tuple[bool, T | None]:
        started = time.monotonic()
        try:
            value = await fn()
        except Exception as exc:
            err = self._wrap(stage, exc)
            self.emit(stage, False, time.monotonic() - started, error=err)
            self.resolve(_reason_for(err), err)
            return False, None
        self.emit(stage, True, time.monotonic() - started, detail(value) if detail else "")
        return True, value

    async def prepare(self) -> None:
        started = time.monotonic()
        schema = self.schema
        payload: Mapping[str, Any] = self.payload if isinstance(self.payload, Mapping) else {}
        messages = schema_errors(schema, self.payload)
        verr = MalformedPayloadError(*messages, step="validate") if messages else None
        self.emit(Stage.VALIDATE, verr is None, time.monotonic() - started, error=verr)
        tpm = self.manager.new_task(TaskPluginOptions(self.context.info, self.context, payload))
        self.tpm = tpm
        errors: dict[Stage, BaseException] = {}

        async def builder() -> None:
            t0 = time.monotonic()
            try:
                self.builder = await self.engine.new_sandbox_builder(
                    SandboxOptions(
                        self.context, filter_payload(self.engine.payload_schema(), payload)
                    )
                )
            except Exception as exc:
                errors[Stage.NEW_SANDBOX_BUILDER] = self._wrap(Stage.NEW_SANDBOX_BUILDER, exc)
            self.emit(
                Stage.NEW_SANDBOX_BUILDER,
                Stage.NEW_SANDBOX_BUILDER not in errors,
                time.monotonic() - t0,
                error=errors.get(Stage.NEW_SANDBOX_BUILDER),
            )

        async def plugins() -> None:
            t0 = time.monotonic()
            try:
                await tpm.new_task_plugin()
            except TaskPluginError as exc:
                errors[Stage.NEW_TASK_PLUGIN] = exc
            self.emit(
                Stage.NEW_TASK_PLUGIN,
                Stage.NEW_TASK_PLUGIN not in errors,
                time.monotonic() - t0,
                f"{len(self.manager.names)} plugin(s)",
                error=errors.get(Stage.NEW_TASK_PLUGIN),
            )

        async with anyio.create_task_group() as tg:
            if verr is None:  # no sandbox for an invalid payload
                tg.start_soon(builder)
            tg.start_soon(plugins)
        err1 = errors.get(Stage.NEW_SANDBOX_BUILDER)
        err2 = errors.get(Stage.NEW_TASK_PLUGIN)
        chosen: BaseException | None = verr
        if chosen is None:
            chosen = err1 if isinstance(err1, MalformedPayloadError) or err2 is None else err2
        if chosen is not None:
            self.resolve(_reason_for(chosen), chosen)

    async def stages(self) -> None:
        await self.prepare()
        tpm = self.tpm
        assert tpm is not None
        if self.reason is not None:
            return
        builder = self.builder
        assert builder is not None
        ok, _ = await self.stage(Stage.BUILD_SANDBOX, lambda: tpm.build_sandbox(builder))
        if not ok:
            return
        ok, sandbox = await self.stage(Stage.START_SANDBOX, lambda: self._start_sandbox(builder))
        if not ok or sandbox is None:
            return
        ok, _ = await self.stage(Stage.STARTED, lambda: tpm.started(sandbox))
        if not ok:
            return

        def exit_detail(r: ResultSet) -> str:
            return f"exit code {r.exit_code}" + (", aborted" if r.aborted else "")

        ok, result = await self.stage(Stage.WAIT_FOR_RESULT, sandbox.wait_for_result, exit_detail)
        if not ok or result is None:
            return
        self.sandbox, self.result = None, result
        self.exit_code = result.exit_code
        ok, success = await self.stage(
            Stage.STOPPED, lambda: tpm.stopped(result), lambda s: f"success={s}"
        )
        if not ok:
            return
        self.success = bool(success)
        self.context.close_log()
        ok, _ = await self.stage(Stage.FINISHED, lambda: tpm.finished(self.success))

    async def _start_sandbox(self, builder: SandboxBuilder) -> Sandbox:
        """Start the sandbox, shielded: a cancellation landing while the engine starts
        it must not lose the started sandbox, or cleanup could not abort it. The stage
        timeout still bounds the start."""
        with anyio.CancelScope(shield=True):
            with anyio.fail_after(self.manager.stage_timeout):
                sandbox = await builder.start_sandbox()
            self.builder, self.sandbox = None, sandbox
        return sandbox

    async def cleanup(self) -> None:
        self.context.close_log()
        tpm = self.tpm
        if tpm is not None and self.reason is not None:
            reason = self.reason
            await self._cleanup_stage(Stage.EXCEPTION, lambda: tpm.exception(reason), reason.value)
        if tpm is not None:
            await self._cleanup_stage(Stage.DISPOSE, tpm.dispose)
        builder, sandbox, result = self.builder, self.sandbox, self.result
        self.builder = self.sandbox = self.result = None
        timeout = self.manager.stage_timeout
        try:
            with anyio.fail_after(timeout):
                if builder is not None:
                    await builder.discard()
                if sandbox is not None:
                    await sandbox.abort()
                    result = await sandbox.wait_for_result()
                    if self.exit_code is None:
                        self.exit_code = result.exit_code
                if result is not None:
                    await result.dispose()
        except TimeoutError:
            err = StageTimeoutError(
                f"engine clean-up did not finish within {timeout:g} s",
                peer="engine",
                step=Stage.DISPOSE.value,
            )
            _logger.warning("task %s: %s", self.context.task_id, err)
            self.cleanup_errors.append(err)
        except Exception as exc:
            _logger.warning("task %s: engine clean-up failed: %s", self.context.task_id, exc)
            self.cleanup_errors.append(self._wrap(Stage.DISPOSE, exc))

    async def _cleanup_stage(
        self, stage: Stage, fn: Callable[[], Awaitable[None]], detail: str = ""
    ) -> None:
        t0 = time.monotonic()
        try:
            await fn()
        except Exception as exc:
            self.cleanup_errors.append(exc)
            self.emit(stage, False, time.monotonic() - t0, detail, exc)
        else:
            self.emit(stage, True, time.monotonic() - t0, detail)

    async def run(self) -> TaskResult:
        self.schema = self.manager.schema_with_engine(self.engine.payload_schema())
        async with anyio.create_task_group() as tg:
            self.context.bind(tg)
            try:
                try:
                    await self.stages()
                except anyio.get_cancelled_exc_class():
                    self.resolve(ExceptionReason.CANCELED, None)
                    raise
                except BaseException as exc:  # a bug, KeyboardInterrupt...
                    self.resolve(ExceptionReason.INTERNAL_ERROR, exc)
                    raise
                finally:
                    # exception and dispose always run, even when cancelled; every
                    # step is bounded by the stage timeout.
                    with anyio.CancelScope(shield=True):
                        await self.cleanup()
            finally:
                self.context.bind(None)
                tg.cancel_scope.cancel()  # background work ends with the run
        return TaskResult(
            info=self.context.info,
            success=self.success and self.reason is None,
            reason=self.reason,
            error=self.error,
            exit_code=self.exit_code,
            events=tuple(self.events),
            cleanup_errors=tuple(self.cleanup_errors),
        )


async def run_task(
    manager: PluginManager,
    engine: Engine,
    payload: object,
    *,
    info: TaskInfo | None = None,
    context: TaskContext | None = None,
    on_event: Callable[[StageEvent], None] | None = None,
) -> TaskResult:
    """Run one task with ``engine`` and the plugins of ``manager``; return its result.

    A failing stage does not raise: it resolves the task (see :class:`TaskResult`).
    Raises :class:`~plugwire.core.tasks.errors.SchemaConflictError` when the engine and
    a plugin declare the same payload key differently. Cancelling the caller cancels
    the task (reason ``canceled``) after ``exception`` and ``dispose`` have run.
    ``on_event`` is called after every stage with a :class:`StageEvent`.
    """
    if context is None:
        context = TaskContext(info or TaskInfo(task_id=secrets.token_hex(8)))
    return await _TaskRun(manager, engine, payload, context, on_event).run()
