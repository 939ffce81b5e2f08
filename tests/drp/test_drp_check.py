"""``plugwire check drp`` / ``plugwire inspect drp`` against the bundled Python
provider (docs/examples/drp/incrementer.py), the Go stand-in provider
(tests/interop/drp/cmd/goprovider) and broken providers (providers/misbehave.py:
define prints garbage or an invalid definition, never prints READY!, unpack escapes
its directory; providers/features.py with FEATURES_STOP=hang ignores /stop)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from drp_support import EXAMPLE, PROVIDERS  # type: ignore[import-not-found,unused-ignore]
from support.cli_interrupt import interrupt_when_ready  # type: ignore[import-not-found,unused-ignore]
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

PY = sys.executable
MISBEHAVE = str(PROVIDERS / "misbehave.py")
FEATURES = str(PROVIDERS / "features.py")


def plugwire(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "plugwire", *args], capture_output=True, text=True, timeout=120
    )


def run_check(*args: str) -> tuple[int, dict[str, Any]]:
    proc = plugwire("check", "drp", "--json", *args)
    assert proc.stdout.strip(), f"no report: rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    return proc.returncode, json.loads(proc.stdout)


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["checks"]}


def assert_all_pass(report: dict[str, Any]) -> None:
    failed = [r for r in report["checks"] if r["status"] != "pass"]
    assert not failed, failed


def test_bundled_python_provider_passes() -> None:
    rc, report = run_check("--", PY, str(EXAMPLE))
    assert rc == 0, report
    assert_all_pass(report)
    checks = rows(report)
    assert set(checks) == {
        "define",
        "plugin version",
        "unpack",
        "listen + READY!",
        "sockets",
        "config",
        "action incrstatus",
        "unknown action",
        "stop",
    }
    assert checks["action incrstatus"]["detail"] == "HTTP 200: Running"
    assert checks["unknown action"]["detail"].startswith("HTTP 404, models.Error")
    assert checks["stop"]["detail"].startswith("/stop: HTTP 200; exited 0")
    assert "1 files" in checks["unpack"]["detail"]
    assert "dir mode 700" in checks["sockets"]["detail"]
    assert report["facts"]["name"] == "incrementer"
    assert (
        "POST /api-plugin/v4/action: reset_count (machines) requires incrementer/touched"
        in report["services"]
    )


@pytest.mark.interop
def test_go_provider_passes() -> None:
    goprovider = build_go("drp", "./cmd/goprovider")
    rc, report = run_check("--", str(goprovider))
    assert rc == 0, report
    assert_all_pass(report)
    checks = rows(report)
    assert report["facts"]["version"] == "v4.0.0-go"
    assert checks["action incrstatus"]["detail"] == "HTTP 200: Running"
    # the Go library writes the /stop reply and calls os.Exit at once
    assert "exited 0" in checks["stop"]["detail"], checks["stop"]


def test_table_output_and_exit_status() -> None:
    proc = plugwire("check", "drp", "--", "env", "MISBEHAVE=define-junk", PY, MISBEHAVE)
    assert proc.returncode == 1
    define = next(line for line in proc.stdout.splitlines() if line.startswith("define "))
    assert define.split()[1] == "FAIL", proc.stdout
    assert "evidence: define printed: this is not json" in proc.stdout
    assert "0 passed, 1 failed, 5 skipped" in proc.stdout


def test_define_printing_garbage_fails() -> None:
    rc, report = run_check("--", "env", "MISBEHAVE=define-junk", PY, MISBEHAVE)
    assert rc == 1
    checks = rows(report)
    assert checks["define"]["status"] == "fail"
    assert "not JSON" in checks["define"]["detail"]
    assert checks["define"]["evidence"] == "define printed: this is not json"
    assert checks["listen + READY!"]["status"] == "skip"
    assert checks["stop"]["status"] == "skip"


def test_invalid_definition_fails_naming_the_fields() -> None:
    rc, report = run_check("--", "env", "MISBEHAVE=define-invalid", PY, MISBEHAVE)
    assert rc == 1
    row = rows(report)["define"]
    assert row["status"] == "fail"
    assert "Name is empty" in row["detail"] and "has no Command" in row["detail"], row
    assert '"PluginVersion": 4' in row["evidence"], row


def test_define_that_crashes_shows_its_stderr() -> None:
    rc, report = run_check("--", "env", "MISBEHAVE=define-fail", PY, MISBEHAVE)
    assert rc == 1
    row = rows(report)["define"]
    assert row["status"] == "fail" and "cannot define today" in row["evidence"], row


def test_provider_that_never_prints_ready_fails() -> None:
    rc, report = run_check("--ready-timeout", "1", "--", "env", "MISBEHAVE=silent", PY, MISBEHAVE)
    assert rc == 1
    checks = rows(report)
    assert checks["define"]["status"] == "pass"
    row = checks["listen + READY!"]
    assert row["status"] == "fail"
    assert "READY!" in row["detail"] and "almost ready..." in row["evidence"], row
    assert checks["config"]["status"] == "skip"
    assert checks["stop"]["status"] == "skip"


def test_unpack_escaping_its_directory_fails() -> None:
    rc, report = run_check(
        "--ready-timeout", "1", "--", "env", "MISBEHAVE=unpack-escape", PY, MISBEHAVE
    )
    assert rc == 1
    row = rows(report)["unpack"]
    assert row["status"] == "fail", row
    assert "cwd/stray.txt" in row["evidence"] and "etc -> /etc" in row["evidence"], row


def test_provider_ignoring_stop_fails() -> None:
    rc, report = run_check(
        "--grace",
        "1",
        "--param",
        'features/mode="check"',
        "--",
        "env",
        "FEATURES_STOP=hang",
        PY,
        FEATURES,
    )
    assert rc == 1
    checks = rows(report)
    assert checks["config"]["status"] == "pass", checks["config"]
    assert checks["action env"]["status"] == "pass", checks["action env"]
    row = checks["stop"]
    assert row["status"] == "fail"
    assert row["detail"] == "did not exit within 1.0 s of /stop"
    assert "/stop: no answer" in row["evidence"] and "exit status -15" in row["evidence"], row


def test_required_params_missing_skip_config_and_undeclared_action_fails() -> None:
    rc, report = run_check("--action", "nope", "--grace", "1", "--", PY, FEATURES)
    assert rc == 1
    checks = rows(report)
    assert checks["config"]["status"] == "skip"
    assert "features/mode" in checks["config"]["detail"]
    row = checks["action nope"]
    assert row["status"] == "fail" and "env (system)" in row["evidence"], row
    assert checks["stop"]["status"] == "pass", checks["stop"]


def test_inspect_prints_the_definition() -> None:
    proc = plugwire("inspect", "drp", "--json", "--", PY, str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["facts"]["definition"]["Name"] == "incrementer"
    assert [r["name"] for r in report["checks"]] == [
        "define",
        "plugin version",
        "listen + READY!",
        "sockets",
    ]
    assert "POST /api-plugin/v4/action: incrstatus (system)" in report["services"]


def test_inspect_table_shows_the_whole_definition() -> None:
    proc = plugwire("inspect", "drp", "--", PY, str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert '"Command": "reset_count"' in proc.stdout
    assert "4 passed, 0 failed, 0 skipped" in proc.stdout


def test_run_keeps_the_provider_until_ctrl_c_then_stops_it() -> None:
    run = interrupt_when_ready(
        [PY, "-m", "plugwire", "run", "drp", "--action", "incrstatus", "--", PY, str(EXAMPLE)],
        timeout=90,
    )
    assert run.before[0].startswith('definition: {"Meta"'), run.before
    assert run.before[1].startswith("listening: pid "), run.before
    assert run.returncode == 0, run.stderr
    assert "POST /action incrstatus -> Running" in run.stderr
    assert "incrementer.py: Config: {}" in run.stderr  # the provider's /log lines
    assert "stopped; exit status 0" in run.stderr
