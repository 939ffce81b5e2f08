"""``plugwire check cipd`` against the bundled Python plugin, LUCI's own example
admission plugin (built from the luci-go module) and broken plugins (plugins/modes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.cli_interrupt import interrupt_when_ready  # type: ignore[import-not-found,unused-ignore]
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

from plugwire.grpc.cipd.check import SAMPLE_IID  # the instance ID of SAMPLE_DIGEST

PY = sys.executable
MODES = Path(__file__).parent / "plugins" / "modes.py"
SAMPLE_DIGEST = "a" * 64


def run_check(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [PY, "-m", "plugwire", "check", "cipd", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip(), f"no report: rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    return proc.returncode, json.loads(proc.stdout)


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["checks"]}


def test_bundled_python_plugin_passes() -> None:
    rc, report = run_check("--", PY, "-m", "plugwire.grpc.cipd.example")
    assert rc == 0, report
    checks = rows(report)
    assert report["facts"]["plugin version"] == "plugwire example 1.0"
    assert checks["admission experimental/plugwire"]["detail"] == (
        "denied: experimental packages are not allowed"
    )
    assert "exited 0" in checks["shutdown"]["detail"]


@pytest.mark.interop
def test_luci_example_plugin_passes_and_admits_with_metadata() -> None:
    luci = build_go(
        "cipd",
        "go.chromium.org/luci/cipd/client/cipd/plugin/plugins/admission/example",
        name="luci-admission-example",
    )
    rc, report = run_check("--metadata", f"allowed-sha256={SAMPLE_DIGEST}", "--", str(luci))
    assert rc == 0, report
    checks = rows(report)
    assert checks["admission plugwire/check/package"]["detail"] == "admitted"
    assert report["facts"]["plugin version"].startswith("example 1.0")


def test_plugin_that_never_connects_fails() -> None:
    rc, report = run_check("--connect-timeout", "1", "--", PY, str(MODES), "never")
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail", row
    assert rows(report)["shutdown"]["status"] == "skip"


def test_plugin_exiting_after_the_handshake_shows_its_status() -> None:
    rc, report = run_check("--", PY, str(MODES), "exit-early")
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail" and "4" in row["evidence"], row


def test_undecided_admission_fails() -> None:
    rc, report = run_check(
        "--pin", "hang/pkg", "--decide-timeout", "1", "--grace", "1", "--", PY, str(MODES), "normal"
    )
    assert rc == 1
    row = rows(report)["admission hang/pkg"]
    assert row["status"] == "fail" and "no decision within 1.0 s" in row["evidence"], row


def test_plugin_ignoring_stdin_eof_fails_shutdown() -> None:
    rc, report = run_check("--pin", "good/pkg", "--grace", "1", "--", PY, str(MODES), "deaf")
    assert rc == 1
    checks = rows(report)
    assert checks["handshake"]["status"] == "pass"
    row = checks["shutdown"]
    assert row["status"] == "fail" and "exit status -9" in row["evidence"], row


def test_inspect_prints_the_handshake_of_the_bundled_plugin() -> None:
    proc = subprocess.run(
        [
            PY,
            "-m",
            "plugwire",
            "inspect",
            "cipd",
            "--json",
            "--",
            PY,
            "-m",
            "plugwire.grpc.cipd.example",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["name"] for r in report["checks"]] == ["handshake", "shutdown"]
    assert report["facts"]["plugin version"] == "plugwire example 1.0"
    assert report["services"] == ["cipd.plugin.Admissions/ListAdmissions (the plugin's stream)"]


def test_inspect_of_a_plugin_that_never_connects_fails() -> None:
    proc = subprocess.run(
        [
            PY,
            "-m",
            "plugwire",
            "inspect",
            "cipd",
            "--connect-timeout",
            "1",
            "--",
            PY,
            str(MODES),
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "handshake  FAIL" in proc.stdout, proc.stdout


# ------------------------------------------------------------------ plugwire run cipd


def run_cipd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "plugwire", "run", "cipd", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_once_shows_the_handshake_and_each_decision() -> None:
    proc = run_cipd(
        "--once", "--pin", "experimental/x", "--pin", f"good/pkg@{SAMPLE_IID}",
        "--metadata", f"allowed-sha256={SAMPLE_DIGEST}",
        "--", PY, "-m", "plugwire.grpc.cipd.example",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("handshake: pid "), lines
    assert "ListAdmissions version 'plugwire example 1.0'" in lines[0]
    assert lines[1:] == [
        f"admission experimental/x:{SAMPLE_IID}: denied: experimental packages are not allowed",
        f"admission good/pkg:{SAMPLE_IID}: admitted",
    ]
    assert "refusing experimental package experimental/x" in proc.stderr  # its Host.Log call
    assert "stopped; exit status 0" in proc.stderr


def test_run_once_default_pin_gets_a_decision() -> None:
    proc = run_cipd("--once", "--", PY, str(MODES), "normal")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"admission plugwire/check/package:{SAMPLE_IID}: " in proc.stdout


def test_run_of_a_plugin_exiting_at_once_exits_1_with_its_status() -> None:
    proc = run_cipd("--once", "--", PY, str(MODES), "die-now")
    assert proc.returncode == 1
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("Error: the plugin never opened its admission stream: "), error
    assert "exit status 5" in error, error


def test_run_of_an_undecided_pin_exits_1() -> None:
    proc = run_cipd(
        "--once", "--pin", "hang/pkg", "--decide-timeout", "1", "--grace", "1",
        "--", PY, str(MODES), "normal",
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"admission hang/pkg:{SAMPLE_IID}: undecided after 1.0 s" in proc.stdout
    assert "Error: hang/pkg" in proc.stderr


def test_run_keeps_the_plugin_until_ctrl_c_then_closes_its_stdin() -> None:
    run = interrupt_when_ready(
        [PY, "-m", "plugwire", "run", "cipd", "--", PY, "-m", "plugwire.grpc.cipd.example"]
    )
    assert run.before[0].startswith("handshake: "), run.before
    assert run.returncode == 0, run.stderr
    assert "stopping plugin: stdin closed" in run.stderr
    assert "stopped; exit status 0" in run.stderr
