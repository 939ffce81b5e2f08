"""``plugwire check nri`` against the bundled Python plugin, upstream's stub (the Go
``cmd/nriplugin`` harness) and default validator, and broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.cli_interrupt import interrupt_when_ready  # type: ignore[import-not-found,unused-ignore]

PY = sys.executable
HERE = Path(__file__).parent / "check_plugins"


def run_check(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [PY, "-m", "plugwire", "check", "nri", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip(), f"no report: rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    return proc.returncode, json.loads(proc.stdout)


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["checks"]}


def test_bundled_python_plugin_passes() -> None:
    rc, report = run_check("--", PY, "-m", "plugwire.ttrpc.nri.example")
    assert rc == 0, report
    checks = rows(report)
    assert checks["registration"]["detail"].startswith("RegisterPlugin name='checked' idx='10'")
    assert report["services"] == ["Plugin.CREATE_CONTAINER"]
    assert "ADJUSTED_BY=10-checked" in checks["event CreateContainer"]["detail"]
    assert "exited 0" in checks["shutdown"]["detail"]


def test_upstream_stub_plugin_passes(go_plugin_bin: Path) -> None:
    rc, report = run_check("--name", "logger", "--", str(go_plugin_bin), "-log")
    assert rc == 0, report
    assert "Plugin.RUN_POD_SANDBOX" in report["services"]
    assert rows(report)["event RemovePodSandbox"]["status"] == "pass"


def test_upstream_default_validator_passes(go_validator_bin: Path, tmp_path: Path) -> None:
    conf = tmp_path / "validator.yaml"
    conf.write_text("enable: true\nrejectOCIHookAdjustment: true\n")
    args = ("--name", "default-validator", "--config", str(conf))
    rc, report = run_check(*args, "--", str(go_validator_bin))
    assert rc == 0, report
    assert "Plugin.VALIDATE_CONTAINER_ADJUSTMENT" in report["services"]


def test_disabled_default_validator_fails_with_its_configure_error(
    go_validator_bin: Path,
) -> None:
    rc, report = run_check("--name", "default-validator", "--", str(go_validator_bin))
    assert rc == 1
    row = rows(report)["registration"]
    assert "default validator is disabled by its configuration" in row["evidence"], row


def test_plugin_failing_a_call_fails_with_its_error(go_plugin_bin: Path) -> None:
    rc, report = run_check("--", str(go_plugin_bin), "-fail-create", "no such device")
    assert rc == 1
    row = rows(report)["event CreateContainer"]
    assert row["status"] == "fail" and "no such device" in row["evidence"], row


def test_plugin_that_never_registers_fails() -> None:
    rc, report = run_check(
        "--registration-timeout", "1", "--", PY, "-c", "import time; time.sleep(30)"
    )
    assert rc == 1
    row = rows(report)["registration"]
    assert row["status"] == "fail", row
    assert "RegisterPlugin" in row["evidence"] or "register" in row["evidence"].lower(), row
    assert rows(report)["shutdown"]["status"] == "skip"


def test_plugin_exiting_at_once_shows_its_exit_status() -> None:
    script = "import sys; print('bad config', file=sys.stderr); sys.exit(3)"
    rc, report = run_check("--", PY, "-c", script)
    assert rc == 1
    row = rows(report)["registration"]
    assert "status 3" in row["evidence"] and "bad config" in row["evidence"], row


def test_plugin_ignoring_the_closed_connection_fails() -> None:
    rc, report = run_check("--", PY, str(HERE / "ignores_close.py"))
    assert rc == 1
    checks = rows(report)
    assert checks["registration"]["status"] == "pass"
    row = checks["shutdown"]
    assert row["status"] == "fail", row
    assert "exit status -9" in row["evidence"], row


# ------------------------------------------------------------------ plugwire run nri


def run_nri(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "plugwire", "run", "nri", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_once_shows_registration_calls_and_adjustment() -> None:
    proc = run_nri("--once", "--", PY, "-m", "plugwire.ttrpc.nri.example")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("registered: name='run' idx='10' pid "), lines
    assert lines[0].endswith("events: CREATE_CONTAINER"), lines
    assert "call CreateContainer: adjusted: env ADJUSTED_BY=10-run; 1 annotations; 1 mounts" in (
        proc.stdout
    )
    assert "call RunPodSandbox: not subscribed (not sent)" in proc.stdout
    assert "running;" not in proc.stdout  # --once: no wait for Ctrl-C
    assert "stopped; exit status 0" in proc.stderr


def test_run_once_sends_the_whole_lifecycle_to_the_upstream_stub(go_plugin_bin: Path) -> None:
    proc = run_nri("--once", "--name", "logger", "--", str(go_plugin_bin), "-log")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "registered: name='logger' idx='10'" in proc.stdout
    for call in ("RunPodSandbox", "StartContainer", "RemoveContainer", "RemovePodSandbox"):
        assert f"call {call}: answered" in proc.stdout, proc.stdout
    assert "call StopContainer: no updates" in proc.stdout
    assert "call CreateContainer: adjusted: " in proc.stdout


def test_run_of_a_plugin_failing_a_call_exits_1_with_its_error(go_plugin_bin: Path) -> None:
    proc = run_nri("--once", "--", str(go_plugin_bin), "-fail-create", "no such device")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "call CreateContainer: failed: " in proc.stdout
    assert "Error: CreateContainer: " in proc.stderr and "no such device" in proc.stderr


def test_run_of_a_plugin_exiting_at_once_exits_1_with_its_status() -> None:
    script = "import sys; print('bad config', file=sys.stderr); sys.exit(3)"
    proc = run_nri("--once", "--", PY, "-c", script)
    assert proc.returncode == 1
    assert proc.stdout == ""
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("Error: 10-run did not register within 5.0 s"), error
    assert "exited with status 3" in error and "bad config" in error, error


def test_run_keeps_the_plugin_until_ctrl_c_then_closes_its_connection() -> None:
    run = interrupt_when_ready(
        [PY, "-m", "plugwire", "run", "nri", "--", PY, "-m", "plugwire.ttrpc.nri.example"]
    )
    assert run.before[0].startswith("registered: "), run.before
    assert run.returncode == 0, run.stderr
    assert "stopping 10-run: connection closed" in run.stderr
    # it exited by itself when the connection closed
    assert "stopped; exit status 0" in run.stderr
