"""Property tests of the lifecycle guarantees, with random failures and exceptions.

For any set of plugins, each failing (raising, reporting malformed payload or an
internal error, hanging past the stage timeout, or saying ``stopped`` -> False) in any
stage, and an engine failing in any of its steps, every plugin must see:
``new_task_plugin`` first; then a prefix of build_sandbox, started, stopped, finished
that ends at the first failing stage; ``exception`` exactly when the task resolved as
an exception, and only right before ``dispose``; ``dispose`` exactly once, last; and
never two of its methods at once. The resolution must be the one upstream's rules
give (fatal beats non-fatal beats malformed payload).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugwire.core.tasks import (
    ExceptionReason,
    MalformedPayloadError,
    PluginManager,
    Registry,
    TaskResult,
    run_task,
)
from plugwire.core.tasks.testing import ACTIONS, MemoryEngine, RecorderProvider

pytestmark = pytest.mark.timeout(240)

NORMAL = ["build_sandbox", "started", "stopped", "finished"]
PLUGIN_STAGES = ["new_task_plugin", *NORMAL, "exception", "dispose"]
FAILING = {"error", "malformed", "nonfatal", "fatal", "hang"}
ENGINE_STEPS = ["new_sandbox_builder", "start_sandbox", "wait_for_result"]
TIMEOUT = 0.25  # generous: the suite shares 2 busy cores

scripts = st.dictionaries(st.sampled_from(PLUGIN_STAGES), st.sampled_from(ACTIONS), max_size=3)
engine_scripts = st.dictionaries(
    st.sampled_from(ENGINE_STEPS), st.sampled_from(["ok", "error", "malformed"]), max_size=2
)


def _stage_reason(actions: list[str]) -> ExceptionReason | None:
    failing = [a for a in actions if a in FAILING]
    if not failing:
        return None
    if all(a == "malformed" for a in failing):
        return ExceptionReason.MALFORMED_PAYLOAD
    return ExceptionReason.INTERNAL_ERROR


def _engine_reason(action: str) -> ExceptionReason | None:
    return {
        "error": ExceptionReason.INTERNAL_ERROR,
        "malformed": ExceptionReason.MALFORMED_PAYLOAD,
    }.get(action)


def _expected(
    plugin_scripts: list[dict[str, str]], engine_script: dict[str, str]
) -> tuple[ExceptionReason | None, list[str], bool]:
    """(reason, the normal stages a created plugin sees, success) by upstream's rules."""
    created = [s for s in plugin_scripts if s.get("new_task_plugin", "ok") not in FAILING]
    err2 = _stage_reason([s.get("new_task_plugin", "ok") for s in plugin_scripts])
    err1 = _engine_reason(engine_script.get("new_sandbox_builder", "ok"))
    if err1 is not None or err2 is not None:
        chosen = err1 if err1 == ExceptionReason.MALFORMED_PAYLOAD or err2 is None else err2
        return chosen, [], False
    seen: list[str] = []
    steps: list[tuple[str, str]] = [
        ("plugin", "build_sandbox"),
        ("engine", "start_sandbox"),
        ("plugin", "started"),
        ("engine", "wait_for_result"),
        ("plugin", "stopped"),
        ("plugin", "finished"),
    ]
    for kind, step in steps:
        if kind == "engine":
            reason = _engine_reason(engine_script.get(step, "ok"))
        else:
            seen.append(step)
            reason = _stage_reason([s.get(step, "ok") for s in created])
        if reason is not None:
            return reason, seen, False
    success = all(s.get("stopped", "ok") != "false" for s in created)
    return None, seen, success


async def _run(
    plugin_scripts: list[dict[str, str]], engine_script: dict[str, str], cancel_after: float | None
) -> tuple[TaskResult | None, list[RecorderProvider], MemoryEngine]:
    reg = Registry(entry_points=())
    providers = [RecorderProvider(script=s) for s in plugin_scripts]
    for i, p in enumerate(providers):
        reg.register(f"p{i}", p)
    engine = MemoryEngine(script=engine_script)
    result: TaskResult | None = None
    config: dict[str, Any] = {f"p{i}": {} for i in range(len(providers))}
    async with PluginManager.open(config, registry=reg, stage_timeout=TIMEOUT) as manager:
        with anyio.move_on_after(cancel_after if cancel_after is not None else 30):
            result = await run_task(manager, engine, {})
    return result, providers, engine


def _check_invariants(providers: list[RecorderProvider]) -> list[list[str]]:
    sequences = []
    for i, p in enumerate(providers):
        seq = p.stages(f"p{i}")
        assert p.overlaps == 0, "two methods of one task plugin ran at once"
        assert seq and seq[0] == "new_task_plugin" and seq.count("new_task_plugin") == 1
        sequences.append(seq)
        if len(seq) == 1:
            continue  # creation failed: a do-nothing task plugin stands in
        assert seq[-1] == "dispose" and seq.count("dispose") == 1
        assert seq.count("exception") <= 1
        if "exception" in seq:
            assert seq[-2] == "exception"
        normal = [s for s in seq[1:] if s not in ("exception", "dispose")]
        assert normal == NORMAL[: len(normal)]
    return sequences


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plugin_scripts=st.lists(scripts, min_size=1, max_size=4),
    engine_script=engine_scripts,
)
def test_lifecycle_ordering_and_resolution(
    backend: str, plugin_scripts: list[dict[str, str]], engine_script: dict[str, str]
) -> None:
    result, providers, _engine = anyio.run(
        _run, plugin_scripts, engine_script, None, backend=backend
    )
    assert result is not None
    sequences = _check_invariants(providers)
    reason, normal, success = _expected(plugin_scripts, engine_script)
    assert result.reason == reason
    assert result.success == success
    if reason is not None:
        assert (reason == ExceptionReason.MALFORMED_PAYLOAD) == isinstance(
            result.error, MalformedPayloadError
        )
    for script, seq in zip(plugin_scripts, sequences, strict=True):
        if script.get("new_task_plugin", "ok") in FAILING:
            assert seq == ["new_task_plugin"]
        else:
            tail = ["exception", "dispose"] if reason is not None else ["dispose"]
            assert seq == ["new_task_plugin", *normal, *tail]
    if reason is not None:
        created = [p for p, s in zip(providers, plugin_scripts, strict=True) if len(p.records) > 1]
        for p in created:
            assert [r.arg for r in p.records if r.stage == "exception"] == [reason.value]
        assert len(created) == sum(
            1 for s in plugin_scripts if s.get("new_task_plugin", "ok") not in FAILING
        )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plugin_scripts=st.lists(scripts, min_size=1, max_size=3),
    cancel_after=st.floats(min_value=0, max_value=0.12),
)
def test_cancellation_at_any_point_still_disposes(
    backend: str, plugin_scripts: list[dict[str, str]], cancel_after: float
) -> None:
    # The task "runs" until aborted, so the cancellation lands somewhere in the run.
    result, providers, engine = anyio.run(
        _run, plugin_scripts, {"wait_for_result": "hang"}, cancel_after, backend=backend
    )
    if result is not None:  # a stage failed before the cancellation landed
        assert result.reason not in (None, ExceptionReason.CANCELED)
    for i, seq in enumerate(_check_invariants(providers)):
        if len(seq) > 1:
            reasons = [r.arg for r in providers[i].records if r.stage == "exception"]
            assert len(reasons) == 1  # cancelled or failed before: always an exception
    if "start_sandbox" in engine.log:
        assert "abort" in engine.log  # a started sandbox is always aborted
