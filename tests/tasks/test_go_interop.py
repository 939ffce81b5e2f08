"""Task plugins across languages: a Go go-plugin task plugin in plugwire's manager, and
a Go go-plugin host (hashicorp/go-plugin v1.8.0) driving a Python task plugin.

The Go harness is tests/interop/tasks (its own module, built on demand and cached by
support.gobuild): cmd/recorder is the Go twin of the Python recorder plugin,
cmd/host a Go host running one task's lifecycle the way plugwire's manager does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.gobuild import build_go

from plugwire.core.tasks import ExceptionReason, PluginManager, Registry, run_task
from plugwire.core.tasks.testing import MemoryEngine, RecorderProvider
from plugwire.grpc.tasks import RemoteProvider

pytestmark = [pytest.mark.anyio, pytest.mark.interop, pytest.mark.timeout(600)]
PY_RECORDER = [
    sys.executable,
    "-m",
    "plugwire.grpc.tasks",
    "plugwire.core.tasks.testing:RecorderProvider",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only


@pytest.fixture(scope="module")
def go_recorder() -> Path:
    return Path(build_go("tasks", "./cmd/recorder"))


@pytest.fixture(scope="module")
def go_host() -> Path:
    return Path(build_go("tasks", "./cmd/host"))


def _records(path: Path, plugin: str) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["stage"], r["arg"]) for r in rows if r["plugin"] == plugin]


async def _in_process(tmp_path: Path, script: dict[str, str]) -> list[tuple[str, str]]:
    """The stages the Python recorder sees in process, for the same script."""
    record = tmp_path / "inproc.jsonl"
    reg = Registry(entry_points=())
    reg.register("ref", RecorderProvider())
    cfg = {"ref": {"script": script, "record_file": str(record)}}
    async with PluginManager.open(cfg, registry=reg, stage_timeout=10) as m:
        await run_task(m, MemoryEngine(), {})
    return _records(record, "ref")


SCRIPTS = [
    {},
    {"started": "error"},
    {"build_sandbox": "malformed"},
    {"stopped": "false"},
    {"new_task_plugin": "fatal"},
]


def _ids(script: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in script.items()) or "ok"


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids)
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_go_plugin_sees_same_stages_as_in_process(
    tmp_path: Path, go_recorder: Path, script: dict[str, str], mtls: bool
) -> None:
    record = tmp_path / "records.jsonl"
    reg = Registry(entry_points=())
    reg.register("local", RecorderProvider())
    reg.register("gogo", RemoteProvider([str(go_recorder)], auto_mtls=mtls))
    cfg: dict[str, Any] = {"script": script, "record_file": str(record)}
    engine = MemoryEngine()
    async with PluginManager.open({"local": cfg, "gogo": cfg}, registry=reg) as m:
        result = await run_task(m, engine, {})
    local, remote = _records(record, "local"), _records(record, "gogo")
    assert local and remote == local
    if script.get("build_sandbox") == "malformed":
        assert result.reason == ExceptionReason.MALFORMED_PAYLOAD
        messages = getattr(result.error, "messages", ())
        assert "gogo rejects the payload in build_sandbox" in messages
    if script.get("started") == "error":
        assert "RuntimeError: gogo fails in started" in str(result.error)
    if not script:
        assert result.success


async def test_go_plugin_env_and_log_reach_the_task(tmp_path: Path, go_recorder: Path) -> None:
    from plugwire.core.tasks import TaskContext, TaskInfo
    from plugwire.core.tasks.local import LocalProcessEngine

    reg = Registry().copy()
    reg.register("gogo", RemoteProvider([str(go_recorder)]))
    engine = LocalProcessEngine(root=tmp_path / "w")
    ctx = TaskContext(TaskInfo("go-env"))
    async with PluginManager.open({"gogo": {}, "success": {}}, registry=reg) as m:
        result = await run_task(
            m, engine, {"command": ["sh", "-c", "echo go says $GO_RECORDER"]}, context=ctx
        )
    assert result.success
    assert "go says 1" in ctx.log_tail  # set by the Go plugin in build_sandbox
    assert "[go-recorder] stopped" in ctx.log_tail


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids)
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_go_host_drives_python_plugin(
    tmp_path: Path, go_host: Path, script: dict[str, str], mtls: bool
) -> None:
    record = tmp_path / "records.jsonl"
    config = json.dumps({"script": script, "record_file": str(record)})
    argv = [str(go_host), *(["-mtls"] if mtls else []), "-config", config, "--", *PY_RECORDER]
    with anyio.fail_after(120):
        proc = await anyio.run_process(argv, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert lines[0]["stage"] == "describe" and lines[0]["provider"] == "RecorderProvider"
    assert json.loads(lines[1]["payload_schema"]) == {"type": "object", "properties": {}}
    # the Python plugin, driven by the Go host, sees what it sees in process
    assert _records(record, "py") == await _in_process(tmp_path, script)
    failing = [line for line in lines if line.get("error_kind")]
    if script.get("started") == "error":
        assert failing[0]["error_kind"] == "FATAL"
        assert failing[0]["messages"] == ["py fails in started"]
    if script.get("build_sandbox") == "malformed":
        assert failing[0]["error_kind"] == "MALFORMED_PAYLOAD"
    if not script:
        assert not failing


def test_go_host_refuses_without_matching_cookie(go_host: Path, tmp_path: Path) -> None:
    # a plugin with another handshake: go-plugin's host fails cleanly, no hang
    other = tmp_path / "other.py"
    other.write_text(
        "from plugwire.core.handshake import Handshake\n"
        "from plugwire.grpc import serve\n"
        "serve(handshake=Handshake('OTHER_COOKIE', 'x'), plugins={})\n"
    )
    proc = subprocess.run(
        [str(go_host), "--", sys.executable, str(other)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "start:" in proc.stderr
