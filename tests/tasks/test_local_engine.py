"""The local-process engine and the built-in plugins, with real processes."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from plugwire.core.tasks import (
    ExceptionReason,
    FatalInternalError,
    MalformedPayloadError,
    NamingConflictError,
    PluginManager,
    PluginProvider,
    Registry,
    Stage,
    StageEvent,
    TaskContext,
    TaskInfo,
    TaskResult,
    run_task,
)
from plugwire.core.tasks.builtins import EnvProvider
from plugwire.core.tasks.local import LocalProcessEngine
from plugwire.core.tasks.testing import RecorderProvider

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def _registry(**extra: PluginProvider) -> Registry:
    reg = Registry().copy()  # the installed built-ins, plus test plugins
    for name, provider in extra.items():
        reg.register(name, provider)
    return reg


async def _run(
    tmp_path: Path,
    payload: dict[str, Any],
    config: dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    stage_timeout: float = 10,
    engine: LocalProcessEngine | None = None,
) -> tuple[TaskResult, TaskContext, list[StageEvent]]:
    config = config if config is not None else {"success": {}, "env": {}}
    engine = engine or LocalProcessEngine(root=tmp_path / "work")
    context = TaskContext(TaskInfo("task-1", 0))
    events: list[StageEvent] = []
    async with PluginManager.open(
        config, registry=registry or _registry(), engine=engine, stage_timeout=stage_timeout
    ) as manager:
        result = await run_task(manager, engine, payload, context=context, on_event=events.append)
    return result, context, events


async def test_task_runs_with_env_log_and_artifacts(tmp_path: Path) -> None:
    config = {
        "env": {},
        "success": {},
        "maxruntime": {},
        "tasklog": {"directory": str(tmp_path / "logs")},
        "artifacts": {"directory": str(tmp_path / "out")},
    }
    script = (
        'echo "hello $GREETING from $TASK_ID"; mkdir -p out; echo data > out/result.txt;'
        " echo oops >&2"
    )
    payload = {
        "command": ["sh", "-c", script],
        "env": {"GREETING": "bonjour"},
        "maxRunTime": 20,
        "artifacts": [
            {"path": "out/result.txt"},
            {"path": "out", "type": "directory", "name": "everything"},
        ],
    }
    result, _, events = await _run(tmp_path, payload, config)
    assert result.success, result
    assert result.resolution == "completed" and result.exit_code == 0
    assert [e.stage for e in events if e.stage not in (Stage.NEW_SANDBOX_BUILDER,)] == [
        Stage.VALIDATE,
        Stage.NEW_TASK_PLUGIN,
        Stage.BUILD_SANDBOX,
        Stage.START_SANDBOX,
        Stage.STARTED,
        Stage.WAIT_FOR_RESULT,
        Stage.STOPPED,
        Stage.FINISHED,
        Stage.DISPOSE,
    ]
    assert all(e.ok for e in events)
    log = (tmp_path / "logs" / "task-1-0.log").read_text()
    assert "hello bonjour from task-1" in log
    assert "oops" in log
    assert "task exited with code 0: succeeded" in log
    out = tmp_path / "out" / "task-1" / "0"
    assert (out / "out" / "result.txt").read_text() == "data\n"
    assert (out / "everything" / "result.txt").read_text() == "data\n"
    assert list((tmp_path / "work").iterdir()) == []  # the task directory was removed


async def test_failing_exit_code(tmp_path: Path) -> None:
    result, _, _ = await _run(tmp_path, {"command": ["sh", "-c", "exit 3"]})
    assert result.resolution == "failed" and result.exit_code == 3 and result.reason is None
    # without the success plugin the exit code alone does not fail the task (upstream)
    result, _, _ = await _run(tmp_path, {"command": ["sh", "-c", "exit 3"]}, {"env": {}})
    assert result.resolution == "completed" and result.exit_code == 3


async def test_missing_command_is_malformed_and_host_goes_on(tmp_path: Path) -> None:
    rec = RecorderProvider()
    reg = _registry(rec=rec)
    result, context, events = await _run(
        tmp_path,
        {"command": ["definitely-not-a-command-xyz"]},
        {"success": {}, "rec": {}},
        registry=reg,
    )
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
    assert isinstance(result.error, MalformedPayloadError)
    assert result.error.messages == ("command not found: 'definitely-not-a-command-xyz'",)
    failed = [e for e in events if not e.ok]
    assert [e.stage for e in failed] == [Stage.START_SANDBOX]
    assert rec.stages() == ["new_task_plugin", "build_sandbox", "exception", "dispose"]
    assert any("command not found" in line for line in context.log_tail)
    # the host keeps working
    result, _, _ = await _run(tmp_path, {"command": ["true"]})
    assert result.success


async def test_not_executable_is_malformed(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    result, _, _ = await _run(tmp_path, {"command": [str(script)]})
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
    assert "not executable" in str(result.error)


async def test_maxruntime_aborts_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    payload = {
        "command": ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"],
        "maxRunTime": 0.5,
    }
    t0 = time.monotonic()
    result, context, _ = await _run(tmp_path, payload, {"maxruntime": {}, "success": {}})
    assert time.monotonic() - t0 < 10
    assert result.resolution == "failed" and result.reason is None
    assert result.exit_code is not None and result.exit_code < 0  # killed by a signal
    assert any("maximum run time of 0.5 s exceeded" in line for line in context.log_tail)
    child = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the grandchild dies with its group (allow reaping time)
            os.kill(child, 0)
            await anyio.sleep(0.05)


async def test_maxruntime_default_from_config(tmp_path: Path) -> None:
    result, _, _ = await _run(
        tmp_path, {"command": ["sleep", "30"]}, {"maxruntime": {"default": 0.3}}
    )
    assert result.resolution == "failed"


async def test_env_is_explicit(tmp_path: Path) -> None:
    os.environ["PLUGWIRE_TEST_SECRET"] = "leak"
    try:
        cmd = {"command": ["sh", "-c", 'echo "secret=[$PLUGWIRE_TEST_SECRET] run=$RUN_ID"']}
        _, context, _ = await _run(tmp_path, cmd)
        assert "secret=[] run=0" in context.log_tail
        engine = LocalProcessEngine(root=tmp_path / "w", inherit_env=True, env={"EXTRA": "1"})
        _, context, _ = await _run(tmp_path, cmd, engine=engine)
        assert "secret=[leak] run=0" in context.log_tail
    finally:
        del os.environ["PLUGWIRE_TEST_SECRET"]


async def test_bad_env_names_are_malformed(tmp_path: Path) -> None:
    result, _, _ = await _run(tmp_path, {"command": ["true"], "env": {"A=B": "x"}})
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
    assert "invalid environment variable 'A=B'" in str(result.error)


class _ConflictBuilder:
    def set_environment_variable(self, name: str, value: str) -> None:
        raise NamingConflictError("taken")


async def test_env_conflict_becomes_malformed_payload() -> None:
    plugin = await EnvProvider().new_plugin(None)  # type: ignore[arg-type]
    ctx = TaskContext(TaskInfo("t"))
    from plugwire.core.tasks import TaskPluginOptions

    tp = await plugin.new_task_plugin(TaskPluginOptions(ctx.info, ctx, {"env": {"X": "1"}}))
    with pytest.raises(MalformedPayloadError, match="'X' has already been set"):
        await tp.build_sandbox(_ConflictBuilder())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("working_dir", "ok", "message"),
    [
        ("sub/dir", True, ""),
        ("../escape", False, "must be a relative path inside"),
        ("/definitely/not/there", False, "does not exist"),
    ],
)
async def test_working_dir(tmp_path: Path, working_dir: str, ok: bool, message: str) -> None:
    result, context, _ = await _run(tmp_path, {"command": ["pwd"], "workingDir": working_dir})
    if ok:
        assert result.success
        assert any(line.endswith("/sub/dir") for line in context.log_tail)
    else:
        assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
        assert message in str(result.error)


async def test_missing_artifact_fails_task_and_escape_is_malformed(tmp_path: Path) -> None:
    config = {"artifacts": {"directory": str(tmp_path / "out")}}
    result, context, _ = await _run(
        tmp_path, {"command": ["true"], "artifacts": [{"path": "nope.txt"}]}, config
    )
    assert result.resolution == "failed"
    assert any("artifact 'nope.txt' (file) not found" in line for line in context.log_tail)
    result, _, _ = await _run(
        tmp_path, {"command": ["true"], "artifacts": [{"path": "../../etc/passwd"}]}, config
    )
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
    result, _, _ = await _run(
        tmp_path, {"command": ["true"], "artifacts": [{"path": "x", "name": "/abs"}]}, config
    )
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD


async def test_plugin_raising_aborts_running_task(tmp_path: Path) -> None:
    rec = RecorderProvider(script={"started": "error"})
    t0 = time.monotonic()
    result, _, _ = await _run(
        tmp_path, {"command": ["sleep", "30"]}, {"rec": {}}, registry=_registry(rec=rec)
    )
    assert time.monotonic() - t0 < 10
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    assert isinstance(result.error, FatalInternalError)
    assert "rec fails in started" in str(result.error)
    assert result.exit_code is not None and result.exit_code < 0


async def test_plugin_hanging_past_timeout(tmp_path: Path) -> None:
    rec = RecorderProvider(script={"build_sandbox": "hang"})
    result, _, _ = await _run(
        tmp_path,
        {"command": ["true"]},
        {"rec": {}},
        registry=_registry(rec=rec),
        stage_timeout=0.3,
    )
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    assert "did not finish stage 'build_sandbox' within 0.3 s" in str(result.error)
    assert rec.stages()[-2:] == ["exception", "dispose"]


async def test_long_output_lines_and_binary(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.buffer.write(b'x' * 100000 + b'\\n\\xff\\xfe tail')"
    result, context, _ = await _run(tmp_path, {"command": [sys.executable, "-c", code]})
    assert result.success
    tail = context.log_tail
    assert tail[-2] == "\ufffd\ufffd tail"
    assert tail[-4:-2] == ["x" * 65536, "x" * (100000 - 65536)]  # split at 64 KiB


def test_installed_builtins_are_registered() -> None:
    reg = Registry()
    for name in ("env", "success", "maxruntime", "tasklog", "artifacts"):
        assert name in reg.names()
        assert isinstance(reg.get(name), PluginProvider)


HOST_SCRIPT = """
import sys, anyio
from plugwire.core.tasks import PluginManager, Registry, run_task
from plugwire.core.tasks.local import LocalProcessEngine

async def main(root, pidfile):
    engine = LocalProcessEngine(root=root, use_setpriv=sys.argv[4] == "setpriv")
    async with PluginManager.open({"success": {}}, registry=Registry(), engine=engine) as m:
        cmd = ["sh", "-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 60"]
        await run_task(m, engine, {"command": cmd})

anyio.run(main, sys.argv[1], sys.argv[2], backend=sys.argv[3])
"""


@pytest.mark.parametrize("launcher", ["setpriv", "prctl"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_task_dies_with_a_killed_host(tmp_path: Path, backend: str, launcher: str) -> None:
    if launcher == "setpriv" and shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is not installed")
    import signal
    import subprocess

    pidfile = tmp_path / "task.pid"
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(tmp_path / "w"), str(pidfile), backend, launcher]
    )
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists():
            assert time.monotonic() < deadline, "the task never started"
            assert host.poll() is None, "the host died early"
            time.sleep(0.05)
        task_pid = int(pidfile.read_text())
        os.kill(task_pid, 0)  # running
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:  # PR_SET_PDEATHSIG: the task goes with its host
            try:
                os.kill(task_pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "the task outlived its SIGKILLed host"
            time.sleep(0.05)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


async def test_prctl_launcher(tmp_path: Path) -> None:
    engine = LocalProcessEngine(root=tmp_path / "w", use_setpriv=False)
    # the fallback when util-linux setpriv is missing
    result, context, _ = await _run(
        tmp_path, {"command": ["sh", "-c", "echo argv0=$0; exit 4"]}, engine=engine
    )
    assert result.exit_code == 4 and result.resolution == "failed"
    assert any(line.startswith("argv0=") and line.endswith("sh") for line in context.log_tail)
    result, _, _ = await _run(tmp_path, {"command": ["no-such-cmd-xyz"]}, engine=engine)
    assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
