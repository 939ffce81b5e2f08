"""``plugwire task run payload.json``: stages printed, exit status, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plugwire.core.tasks.cli import EXIT_CONFIG, EXIT_EXCEPTION, EXIT_FAILED, task

pytestmark = pytest.mark.timeout(60)
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tasks"


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(task, list(args), catch_exceptions=False)


def _config(tmp_path: Path, **plugins: Any) -> Path:
    base: dict[str, Any] = {"env": {}, "success": {}, "maxruntime": {}, "tasklog": {}}
    base.update(plugins)
    return _write(
        tmp_path / "worker.json", {"plugins": base, "engine": {"root": str(tmp_path / "w")}}
    )


def test_run_prints_every_stage_and_result(tmp_path: Path) -> None:
    payload = _write(
        tmp_path / "p.json", {"command": ["sh", "-c", "echo hi $X"], "env": {"X": "there"}}
    )
    result = _invoke("run", str(payload), "-c", str(_config(tmp_path)), "--task-id", "cli1")
    assert result.exit_code == 0, result.output
    out = result.output
    stages = [line.split()[1] for line in out.splitlines() if line.startswith("stage ")]
    assert stages[0] == "validate" and stages[-1] == "dispose"
    assert set(stages) == {
        "validate",
        "new_sandbox_builder",
        "new_task_plugin",
        "build_sandbox",
        "start_sandbox",
        "started",
        "wait_for_result",
        "stopped",
        "finished",
        "dispose",
    }
    assert "  | hi there" in out
    summary = json.loads(out.splitlines()[-1].removeprefix("result "))
    assert summary == {
        "task_id": "cli1",
        "resolution": "completed",
        "success": True,
        "exit_code": 0,
    }


def test_run_failed_and_exception_exit_codes(tmp_path: Path) -> None:
    cfg = str(_config(tmp_path))
    failed = _write(tmp_path / "f.json", {"command": ["false"]})
    assert _invoke("run", str(failed), "-c", cfg).exit_code == EXIT_FAILED
    missing = _write(tmp_path / "m.json", {"command": ["no-such-cmd-plugwire"]})
    result = _invoke("run", str(missing), "-c", cfg, "-q")
    assert result.exit_code == EXIT_EXCEPTION
    assert "command not found: 'no-such-cmd-plugwire'" in result.output
    assert '"reason": "malformed-payload"' in result.output


def test_bad_payload_lists_every_message() -> None:
    result = _invoke("run", str(EXAMPLES / "bad-payload.json"), "-q")
    assert result.exit_code == EXIT_EXCEPTION
    for text in (
        "'colour' was unexpected",
        "task.payload.command: 'echo not-a-list' is not of type 'array'",
        "task.payload.env.N: 1 is not of type 'string'",
        "task.payload.maxRunTime: 0 is less than or equal to the minimum of 0",
    ):
        assert text in result.output


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"plugins": {"nope": {}}}, "unknown task plugin 'nope'"),
        ({"plugins": {"artifacts": {}}}, "'directory' is a required property"),
        ({"stage_timeout": -1}, "config.stage_timeout"),
        ({"engine": {"colour": 1}}, "'colour' was unexpected"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_config_is_reported(tmp_path: Path, config: Any, message: str) -> None:
    cfg = tmp_path / "c.json"
    if isinstance(config, str):
        cfg.write_text(config)
    else:
        _write(cfg, config)
    payload = _write(tmp_path / "p.json", {"command": ["true"]})
    result = _invoke("run", str(payload), "-c", str(cfg))
    assert result.exit_code == EXIT_CONFIG
    assert message in result.output


def test_missing_payload_file(tmp_path: Path) -> None:
    result = _invoke("run", str(tmp_path / "absent.json"))
    assert result.exit_code == EXIT_CONFIG
    assert "cannot read payload file" in result.output


def test_trio_backend(tmp_path: Path) -> None:
    payload = _write(tmp_path / "p.json", {"command": ["true"]})
    result = _invoke("run", str(payload), "-c", str(_config(tmp_path)), "--backend", "trio")
    assert result.exit_code == 0, result.output


def test_plugins_lists_builtins() -> None:
    result = _invoke("plugins")
    names = [line.split()[0] for line in result.output.splitlines()]
    assert {"env", "success", "maxruntime", "tasklog", "artifacts"} <= set(names)


def test_registered_as_plugwire_subcommand(tmp_path: Path) -> None:
    from plugwire.core.cli import main

    payload = _write(tmp_path / "p.json", {"command": ["true"]})
    result = CliRunner().invoke(main, ["task", "run", str(payload), "-c", str(_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert '"resolution": "completed"' in result.output


def test_example_script_runs() -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_task.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stopwatch: the task ran" in proc.stdout
    assert "resolution: completed" in proc.stdout
