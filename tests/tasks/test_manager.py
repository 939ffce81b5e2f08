"""The plugin manager: enabling, payload parts, fan-out, timeouts, aggregation, order."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from plugwire.core.errors import ConfigError
from plugwire.core.tasks import (
    ExceptionReason,
    FatalInternalError,
    MalformedPayloadError,
    NonFatalInternalError,
    Plugin,
    PluginFailure,
    PluginManager,
    PluginOptions,
    PluginProvider,
    Registry,
    SchemaConflictError,
    Stage,
    StageOrderError,
    StageTimeoutError,
    TaskContext,
    TaskInfo,
    TaskPlugin,
    TaskPluginManager,
    TaskPluginOptions,
    aggregate_failures,
    object_schema,
    run_task,
)
from plugwire.core.tasks.testing import MemoryEngine, RecorderProvider

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def _registry(**providers: PluginProvider) -> Registry:
    reg = Registry(entry_points=())
    for name, provider in providers.items():
        reg.register(name, provider)
    return reg


def _options(payload: dict[str, Any] | None = None, task_id: str = "t1") -> TaskPluginOptions:
    info = TaskInfo(task_id)
    return TaskPluginOptions(info, TaskContext(info), payload or {})


async def test_enabled_is_config_minus_disabled() -> None:
    rec = RecorderProvider()
    reg = _registry(a=rec, b=rec, c=rec)
    async with PluginManager.open(
        {"a": {}, "b": {}, "c": {}, "disabled": ["b"]}, registry=reg
    ) as m:
        assert m.names == ("a", "c")
    async with PluginManager.open({"a": {}}, registry=reg) as m:
        assert m.names == ("a",)


async def test_unknown_plugin_and_bad_config_rejected() -> None:
    reg = _registry(a=RecorderProvider())
    with pytest.raises(ConfigError, match="unknown task plugin 'zzz'"):
        async with PluginManager.open({"zzz": {}}, registry=reg):
            pass
    with pytest.raises(ConfigError, match="unknown task plugin 'nope'"):
        async with PluginManager.open({"a": {}, "disabled": ["nope"]}, registry=reg):
            pass
    with pytest.raises(ConfigError, match="configuration of task plugin 'a' is invalid") as info:
        async with PluginManager.open({"a": {"script": {"started": "explode"}}}, registry=reg):
            pass
    assert "config.a.script.started" in str(info.value)
    with pytest.raises(ConfigError, match="must be an object"):
        async with PluginManager.open(["a"], registry=reg):  # type: ignore[arg-type]
            pass
    with pytest.raises(ConfigError, match="stage timeout"):
        PluginManager({}, stage_timeout=0)


class _FailingProvider(PluginProvider):
    async def new_plugin(self, options: PluginOptions) -> Plugin:
        raise RuntimeError(f"{options.name} cannot start")


class _ClosingPlugin(Plugin):
    closed = 0

    async def aclose(self) -> None:
        _ClosingPlugin.closed += 1


class _ClosingProvider(PluginProvider):
    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _ClosingPlugin()


async def test_plugin_start_failures_listed_and_others_closed() -> None:
    _ClosingPlugin.closed = 0
    reg = _registry(bad1=_FailingProvider(), bad2=_FailingProvider(), good=_ClosingProvider())
    with pytest.raises(ConfigError, match="plugin instantiation failed") as info:
        async with PluginManager.open({"bad1": {}, "bad2": {}, "good": {}}, registry=reg):
            pass
    assert "bad1 cannot start" in str(info.value) and "bad2 cannot start" in str(info.value)
    assert _ClosingPlugin.closed == 1
    async with PluginManager.open({"good": {}}, registry=reg):
        pass
    assert _ClosingPlugin.closed == 2


async def test_conflicting_payload_schemas_name_both() -> None:
    reg = _registry(
        one=RecorderProvider(payload=object_schema({"k": {"type": "string"}})),
        two=RecorderProvider(payload=object_schema({"k": {"type": "number"}})),
    )
    with pytest.raises(SchemaConflictError) as info:
        async with PluginManager.open({"one": {}, "two": {}}, registry=reg):
            pass
    assert info.value.owners == ("one", "two")


async def test_each_plugin_gets_only_its_part() -> None:
    a = RecorderProvider(payload=object_schema({"x": {"type": "integer"}}, ["x"]))
    b = RecorderProvider(payload=object_schema({"y": {"type": "string"}}))
    async with PluginManager.open({"a": {}, "b": {}}, registry=_registry(a=a, b=b)) as m:
        assert m.payload_schema()["additionalProperties"] is False
        tpm = m.new_task(_options({"x": 1, "y": "why", "z": 0}))
        await tpm.new_task_plugin()
        await tpm.dispose()
    assert [json.loads(r.arg) for r in a.records if r.stage == "new_task_plugin"] == [{"x": 1}]
    assert [json.loads(r.arg) for r in b.records if r.stage == "new_task_plugin"] == [{"y": "why"}]


async def test_invalid_part_gives_malformed_and_plugin_sits_out() -> None:
    a = RecorderProvider(payload=object_schema({"x": {"type": "integer"}}, ["x"]))
    b = RecorderProvider(payload=object_schema({"y": {"type": "string"}}))
    async with PluginManager.open({"a": {}, "b": {}}, registry=_registry(a=a, b=b)) as m:
        tpm = m.new_task(_options({"x": "not a number", "y": "ok"}))
        with pytest.raises(MalformedPayloadError) as info:
            await tpm.new_task_plugin()
        await tpm.exception(ExceptionReason.MALFORMED_PAYLOAD)
        await tpm.dispose()
    assert info.value.messages == ("task.payload.x: 'not a number' is not of type 'integer'",)
    assert [f.plugin for f in info.value.failures] == ["a"]
    assert a.stages() == []  # never created: no stage reaches it
    assert b.stages() == ["new_task_plugin", "exception", "dispose"]


class _Rendezvous(TaskPlugin):
    """Each plugin's ``started`` waits for every other plugin's ``started`` to begin."""

    def __init__(self, arrived: list[int], total: int, event: anyio.Event) -> None:
        self.arrived, self.total, self.event = arrived, total, event

    async def started(self, sandbox: Any) -> None:
        self.arrived.append(1)
        if len(self.arrived) == self.total:
            self.event.set()
        with anyio.fail_after(5):
            await self.event.wait()


class _RendezvousProvider(PluginProvider):
    def __init__(self, total: int) -> None:
        self.arrived: list[int] = []
        self.total = total
        self.event: anyio.Event | None = None

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        outer = self

        class _P(Plugin):
            async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
                if outer.event is None:
                    outer.event = anyio.Event()
                return _Rendezvous(outer.arrived, outer.total, outer.event)

        return _P()


async def test_stage_fans_out_concurrently() -> None:
    prov = _RendezvousProvider(3)
    reg = _registry(p1=prov, p2=prov, p3=prov)
    async with PluginManager.open({"p1": {}, "p2": {}, "p3": {}}, registry=reg) as m:
        tpm = m.new_task(_options())
        await tpm.new_task_plugin()
        await tpm.build_sandbox(None)  # type: ignore[arg-type]
        await tpm.started(None)  # type: ignore[arg-type]  # would dead-lock if sequential
        await tpm.dispose()
    assert len(prov.arrived) == 3


async def test_hanging_plugin_times_out_others_complete() -> None:
    hang = RecorderProvider(script={"started": "hang"})
    fine = RecorderProvider()
    reg = _registry(hang=hang, fine=fine)
    async with PluginManager.open({"hang": {}, "fine": {}}, registry=reg, stage_timeout=0.3) as m:
        tpm = m.new_task(_options())
        await tpm.new_task_plugin()
        await tpm.build_sandbox(None)  # type: ignore[arg-type]
        t0 = time.monotonic()
        with pytest.raises(FatalInternalError) as info:
            await tpm.started(None)  # type: ignore[arg-type]
        assert 0.25 < time.monotonic() - t0 < 3
        await tpm.exception(ExceptionReason.INTERNAL_ERROR)
        await tpm.dispose()
    (failure,) = info.value.failures
    assert failure.plugin == "hang" and isinstance(failure.error, StageTimeoutError)
    assert "did not finish stage 'started' within 0.3 s" in str(info.value)
    assert fine.stages() == hang.stages()
    assert fine.stages()[-3:] == ["started", "exception", "dispose"]
    assert hang.overlaps == 0


def _f(plugin: str, error: BaseException) -> PluginFailure:
    return PluginFailure(plugin, "started", error)


def test_aggregation_precedence() -> None:
    mal1 = _f("m1", MalformedPayloadError("bad a"))
    mal2 = _f("m2", MalformedPayloadError("bad b", "bad c"))
    nonfatal = _f("n", NonFatalInternalError("meh"))
    crash = _f("c", ValueError("crash"))
    assert aggregate_failures("started", []) is None
    merged = aggregate_failures("started", [mal1, mal2])
    assert isinstance(merged, MalformedPayloadError)
    assert merged.messages == ("bad a", "bad b", "bad c")
    assert merged.peer == "m1, m2"
    nf = aggregate_failures("started", [mal1, nonfatal])
    assert type(nf) is NonFatalInternalError
    assert nf.failures == (mal1, nonfatal)
    fatal = aggregate_failures("started", [mal1, nonfatal, crash])
    assert type(fatal) is FatalInternalError
    assert "plugin 'c' in stage 'started': ValueError: crash" in str(fatal)
    assert fatal.peer == "c"


async def test_stopped_false_if_any_false_and_errors_aggregate() -> None:
    yes = RecorderProvider()
    no = RecorderProvider(script={"stopped": "false"})
    reg = _registry(yes=yes, no=no)
    engine = MemoryEngine()
    async with PluginManager.open({"yes": {}, "no": {}}, registry=reg) as m:
        result = await run_task(m, engine, {})
    assert result.reason is None and not result.success and result.resolution == "failed"
    async with PluginManager.open({"yes": {}}, registry=reg) as m:
        result = await run_task(m, engine, {})
    assert result.success and result.resolution == "completed"


async def test_stage_order_enforced() -> None:
    rec = RecorderProvider()
    async with PluginManager.open({"r": {}}, registry=_registry(r=rec)) as m:
        tpm: TaskPluginManager = m.new_task(_options())
        with pytest.raises(StageOrderError, match="out of order"):
            await tpm.started(None)  # type: ignore[arg-type]
        with pytest.raises(StageOrderError, match="before new_task_plugin"):
            await tpm.exception(ExceptionReason.CANCELED)
        await tpm.new_task_plugin()
        with pytest.raises(StageOrderError, match="out of order"):
            await tpm.new_task_plugin()
        await tpm.exception(ExceptionReason.CANCELED)
        with pytest.raises(StageOrderError, match="twice"):
            await tpm.exception(ExceptionReason.CANCELED)
        with pytest.raises(StageOrderError, match="out of order"):
            await tpm.build_sandbox(None)  # type: ignore[arg-type]
        await tpm.dispose()
        with pytest.raises(StageOrderError, match="after dispose"):
            await tpm.finished(True)
        with pytest.raises(StageOrderError, match="twice"):
            await tpm.dispose()
    assert rec.stages() == ["new_task_plugin", "exception", "dispose"]


async def test_concurrent_stage_call_rejected() -> None:
    slow = RecorderProvider(script={"build_sandbox": "hang"})
    async with PluginManager.open({"s": {}}, registry=_registry(s=slow), stage_timeout=0.5) as m:
        tpm = m.new_task(_options())
        await tpm.new_task_plugin()
        errors: list[BaseException] = []

        async def second() -> None:
            await anyio.sleep(0.05)
            try:
                await tpm.started(None)  # type: ignore[arg-type]
            except StageOrderError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(second)
            with pytest.raises(FatalInternalError):
                await tpm.build_sandbox(None)  # type: ignore[arg-type]
        await tpm.dispose()
    assert len(errors) == 1 and "while stage 'build_sandbox' is running" in str(errors[0])
    assert slow.overlaps == 0


async def test_run_happy_path_stage_sequence() -> None:
    rec = RecorderProvider()
    engine = MemoryEngine()
    events: list[Stage] = []
    async with PluginManager.open({"r": {}}, registry=_registry(r=rec)) as m:
        result = await run_task(m, engine, {}, on_event=lambda e: events.append(e.stage))
    assert result.success and result.exit_code == 0
    assert rec.stages() == [
        "new_task_plugin",
        "build_sandbox",
        "started",
        "stopped",
        "finished",
        "dispose",
    ]
    assert events[0] == Stage.VALIDATE and events[-1] == Stage.DISPOSE
    assert set(events[1:3]) == {Stage.NEW_TASK_PLUGIN, Stage.NEW_SANDBOX_BUILDER}
    assert events[3:] == [
        Stage.BUILD_SANDBOX,
        Stage.START_SANDBOX,
        Stage.STARTED,
        Stage.WAIT_FOR_RESULT,
        Stage.STOPPED,
        Stage.FINISHED,
        Stage.DISPOSE,
    ]
    assert engine.log[-1] == "result.dispose"


async def test_run_malformed_payload_lists_every_message() -> None:
    rec = RecorderProvider(payload=object_schema({"n": {"type": "integer"}}, ["n"]))
    engine = MemoryEngine(payload=object_schema({"command": {"type": "array"}}, ["command"]))
    async with PluginManager.open({"r": {}}, registry=_registry(r=rec)) as m:
        result = await run_task(m, engine, {"n": "x", "bogus": 1})
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
    assert isinstance(result.error, MalformedPayloadError)
    assert len(result.error.messages) == 3
    text = "\n".join(result.error.messages)
    assert "'command' is a required property" in text
    assert "'bogus' was unexpected" in text
    assert "task.payload.n: 'x' is not of type 'integer'" in text
    assert "new_sandbox_builder" not in engine.log  # no sandbox for an invalid payload
    assert rec.stages() == []  # its own part is invalid too: it sits out


async def test_run_engine_conflict_with_plugin_is_config_error() -> None:
    rec = RecorderProvider(payload=object_schema({"command": {"type": "string"}}))
    engine = MemoryEngine(payload=object_schema({"command": {"type": "array"}}))
    async with PluginManager.open({"r": {}}, registry=_registry(r=rec)) as m:
        with pytest.raises(SchemaConflictError) as info:
            await run_task(m, engine, {})
    assert info.value.owners == ("engine", "r")


async def test_cancelled_run_still_disposes() -> None:
    rec = RecorderProvider()
    engine = MemoryEngine(script={"wait_for_result": "hang"})
    async with PluginManager.open({"r": {}}, registry=_registry(r=rec)) as m:
        with anyio.move_on_after(0.2):
            await run_task(m, engine, {})
    assert rec.stages()[-2:] == ["exception", "dispose"]
    assert [r.arg for r in rec.records if r.stage == "exception"] == ["canceled"]
    assert "abort" in engine.log


def test_task_log_after_close() -> None:
    from plugwire.core.errors import ClosedError

    ctx = TaskContext(TaskInfo("log"))
    seen: list[str] = []
    ctx.add_log_sink(seen.append)
    ctx.log("hello")
    ctx.write_log("raw\nlines")
    ctx.close_log()
    ctx.log("dropped")  # upstream: messages in exception/dispose are dropped
    ctx.log_error("dropped too")
    with pytest.raises(ClosedError, match="task log is closed"):
        ctx.write_log("engine output after close")
    assert seen == ["[plugwire] hello", "raw", "lines"]
    assert ctx.log_tail == seen


async def test_broken_log_sink_is_removed() -> None:
    ctx = TaskContext(TaskInfo("sink"))
    calls: list[str] = []

    def broken(line: str) -> None:
        calls.append(line)
        raise OSError("disk full")

    ctx.add_log_sink(broken)
    ctx.log("one")
    ctx.log("two")
    assert calls == ["[plugwire] one"]
    assert ctx.log_tail == ["[plugwire] one", "[plugwire] two"]
