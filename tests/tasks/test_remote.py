"""Task plugins out of process over gRPC (plugwire.grpc.tasks), with real plugin processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from plugwire.core.errors import ConfigError, TransportNotAvailableError
from plugwire.core.tasks import (
    ExceptionReason,
    FatalInternalError,
    MalformedPayloadError,
    PluginManager,
    PluginOptions,
    Registry,
    StageTimeoutError,
    TaskResult,
    run_task,
)
from plugwire.core.tasks.cli import task as task_cli
from plugwire.core.tasks.local import LocalProcessEngine
from plugwire.core.tasks.testing import MemoryEngine, RecorderProvider
from plugwire.grpc.tasks import HANDSHAKE, RemoteProvider

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tasks"
RECORDER = [
    sys.executable,
    "-m",
    "plugwire.grpc.tasks",
    "plugwire.core.tasks.testing:RecorderProvider",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only


def _records(path: Path, plugin: str) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["stage"], r["arg"]) for r in rows if r["plugin"] == plugin]


async def _side_by_side(
    tmp_path: Path,
    script: dict[str, str],
    *,
    stage_timeout: float = 10,
    engine: Any = None,
    payload: dict[str, Any] | None = None,
) -> tuple[TaskResult, list[tuple[str, str]], list[tuple[str, str]]]:
    """One task with the recorder in process ("local") and in a process ("remote")."""
    record = tmp_path / "records.jsonl"
    record.unlink(missing_ok=True)
    reg = Registry(entry_points=())
    reg.register("local", RecorderProvider())
    reg.register("remote", RemoteProvider(RECORDER))
    cfg = {"script": script, "record_file": str(record)}
    engine = engine or MemoryEngine()
    async with PluginManager.open(
        {"local": cfg, "remote": cfg}, registry=reg, stage_timeout=stage_timeout
    ) as manager:
        result = await run_task(manager, engine, payload or {})
    return result, _records(record, "local"), _records(record, "remote")


SCRIPTS = [
    {},
    {"started": "error"},
    {"stopped": "false"},
    {"build_sandbox": "malformed"},
    {"new_task_plugin": "nonfatal"},
    {"finished": "fatal", "exception": "error"},
]


@pytest.mark.interop
@pytest.mark.parametrize(
    "script", SCRIPTS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "ok"
)
async def test_subprocess_plugin_sees_same_stages_as_in_process(
    tmp_path: Path, script: dict[str, str]
) -> None:
    result, local, remote = await _side_by_side(tmp_path, script)
    assert local, "the in-process recorder saw nothing"
    assert remote == local  # same stages, same arguments (reasons, verdict inputs)
    failing = {"error", "malformed", "nonfatal", "fatal"}
    if any(a in failing for a in script.values()):
        assert result.reason is not None
        if len(remote) > 1:
            assert remote[-2][0] == "exception"
        else:  # creation failed: nothing else reaches the plugin
            assert remote[0][0] == "new_task_plugin"
    if script.get("stopped") == "false":
        assert result.resolution == "failed"


@pytest.mark.interop
async def test_subprocess_plugin_with_real_engine(tmp_path: Path) -> None:
    engine = LocalProcessEngine(root=tmp_path / "work")
    result, local, remote = await _side_by_side(
        tmp_path, {}, engine=engine, payload={"command": ["true"]}
    )
    assert result.success
    assert remote == local
    assert ("stopped", "success=True") in remote


async def test_remote_errors_keep_their_kind(tmp_path: Path) -> None:
    result, _, _ = await _side_by_side(tmp_path, {"build_sandbox": "malformed"})
    assert isinstance(result.error, MalformedPayloadError)
    assert set(result.error.messages) == {
        "local rejects the payload in build_sandbox",
        "remote rejects the payload in build_sandbox",
    }
    result, _, _ = await _side_by_side(tmp_path, {"started": "error"})
    assert isinstance(result.error, FatalInternalError)
    assert "RuntimeError: remote fails in started" in str(result.error)


async def test_remote_hang_is_a_stage_timeout(tmp_path: Path) -> None:
    t0 = time.monotonic()
    result, local, remote = await _side_by_side(tmp_path, {"started": "hang"}, stage_timeout=1.0)
    assert time.monotonic() - t0 < 30
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    assert isinstance(result.error, FatalInternalError)
    kinds = {type(f.error) for f in result.error.failures}
    assert kinds == {StageTimeoutError}
    assert [f.plugin for f in result.error.failures] == ["local", "remote"]
    assert remote == local and remote[-2:] == [("exception", "internal-error"), ("dispose", "")]


async def test_env_from_remote_plugin_reaches_the_task(tmp_path: Path) -> None:
    reg = Registry().copy()
    reg.register("shout", RemoteProvider([sys.executable, str(EXAMPLES / "shout_plugin.py")]))
    engine = LocalProcessEngine(root=tmp_path / "w")
    from plugwire.core.tasks import TaskContext, TaskInfo

    ctx = TaskContext(TaskInfo("shout-1"))
    async with PluginManager.open({"shout": {"strict": True}, "success": {}}, registry=reg) as m:
        assert m.payload_schema()["properties"]["shout"] == {"type": "string", "minLength": 1}
        payload = {"command": ["sh", "-c", "echo got $SHOUT; exit 1"], "shout": "hey"}
        result = await run_task(m, engine, payload, context=ctx)
    assert "got HEY" in ctx.log_tail
    assert "[plugwire] shout: the task stopped with exit code 1" in ctx.log_tail
    assert result.resolution == "failed"


async def test_remote_config_rejected(tmp_path: Path) -> None:
    reg = Registry(entry_points=())
    reg.register("shout", RemoteProvider([sys.executable, str(EXAMPLES / "shout_plugin.py")]))
    with pytest.raises(ConfigError, match="plugin instantiation failed") as info:
        async with PluginManager.open({"shout": {"loud": 1}}, registry=reg):
            pass
    assert "rejected its configuration" in str(info.value)
    assert "'loud' was unexpected" in str(info.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/definitely/not/a/plugin"], "not/a/plugin"),
        ([sys.executable, "-c", "import sys; sys.exit(3)"], "exit status 3"),
        ([sys.executable, "-c", "print('hello there')"], "Unrecognized remote plugin message"),
        (
            [sys.executable, "-c", "print('1|9|unix|/tmp/x|grpc|')"],
            "incompatible API version",
        ),
        (
            [sys.executable, "-c", "import time; time.sleep(30)"],
            "timeout while waiting for plugin to start",
        ),
    ],
    ids=["missing", "exits", "garbage", "version", "silent"],
)
async def test_bad_plugin_processes(argv: list[str], message: str) -> None:
    reg = Registry(entry_points=())
    reg.register("bad", RemoteProvider(argv, start_timeout=1.0, kill_grace=0.5))
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="plugin instantiation failed") as info:
        async with PluginManager.open({"bad": {}}, registry=reg):
            pass
    assert message in str(info.value)
    assert time.monotonic() - t0 < 15
    # the host keeps working
    reg.register("ok", RemoteProvider(RECORDER))
    async with PluginManager.open({"ok": {}}, registry=reg) as m:
        assert (await run_task(m, MemoryEngine(), {})).success


async def test_plugin_process_dying_mid_task(tmp_path: Path) -> None:
    reg = Registry(entry_points=())
    provider = RemoteProvider(RECORDER)
    reg.register("remote", provider)
    engine = MemoryEngine(script={"wait_for_result": "hang"})
    async with PluginManager.open({"remote": {}}, registry=reg, stage_timeout=5) as m:
        plugin = m.plugins["remote"]

        async def kill_soon() -> None:
            await anyio.sleep(0.5)
            os.kill(plugin.client.pid, 9)  # type: ignore[attr-defined]
            await anyio.sleep(0.5)
            await engine_abort()

        sandboxes: list[Any] = []

        async def engine_abort() -> None:
            for s in sandboxes:
                await s.abort()

        orig = engine.new_sandbox_builder

        async def spy(options: Any) -> Any:
            builder = await orig(options)
            start = builder.start_sandbox

            async def start_sandbox() -> Any:
                sandbox = await start()
                sandboxes.append(sandbox)
                return sandbox

            builder.start_sandbox = start_sandbox  # type: ignore[method-assign]
            return builder

        engine.new_sandbox_builder = spy  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_soon)
            result = await run_task(m, engine, {})
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    assert "is gone" in str(result.error) and "exit status -9" in str(result.error)


def test_plugin_without_cookie_refuses_to_run() -> None:
    env = {k: v for k, v in os.environ.items() if k != HANDSHAKE.magic_cookie_key}
    proc = subprocess.run(
        [*RECORDER], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 1
    assert "This binary is a plugin" in proc.stderr
    assert proc.stdout == ""


async def test_trio_refused_clearly() -> None:
    async def attempt() -> None:
        await RemoteProvider(RECORDER).new_plugin(PluginOptions("x", {}))

    with pytest.raises(TransportNotAvailableError, match="asyncio only"):
        await anyio.to_thread.run_sync(lambda: anyio.run(attempt, backend="trio"))


def test_cli_runs_external_plugin(tmp_path: Path) -> None:
    worker = json.loads((EXAMPLES / "worker.json").read_text())
    worker["external"]["shout"]["command"] = [sys.executable, str(EXAMPLES / "shout_plugin.py")]
    worker["plugins"]["tasklog"]["directory"] = str(tmp_path / "logs")
    worker["plugins"]["artifacts"]["directory"] = str(tmp_path / "artifacts")
    worker["engine"] = {"root": str(tmp_path / "work")}
    cfg = tmp_path / "worker.json"
    cfg.write_text(json.dumps(worker))
    result = CliRunner().invoke(
        task_cli, ["run", str(EXAMPLES / "payload-shout.json"), "-c", str(cfg)]
    )
    assert result.exit_code == 0, result.output
    assert "the plugin says: OUT OF PROCESS" in result.output
    assert "plugins env, success, maxruntime, tasklog, artifacts, shout" in result.output
