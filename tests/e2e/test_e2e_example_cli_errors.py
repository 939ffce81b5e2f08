"""Issue 20 item 4: every runnable example and console script answers bad arguments
with its usage and a one-line error (exit 2), and a missing peer with one typed-error
line (exit 1) — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PY = sys.executable
NOPE = "/nonexistent/plugwire-i20.sock"
BIN = Path(sys.executable).parent


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRI_PLUGIN")}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env
    )


BAD_ARGS = [
    pytest.param([PY, "-m", "plugwire.ttrpc.nri.example"], id="nri-no-name", marks=pytest.mark.nri),
    pytest.param(
        [PY, "-m", "plugwire.ttrpc.nri.example", "--idx", "x1", "--name", "a"],
        id="nri-bad-idx",
        marks=pytest.mark.nri,
    ),
    pytest.param(
        [PY, "-m", "plugwire.ttrpc.nri.example", "--bogus"], id="nri-bogus", marks=pytest.mark.nri
    ),
    pytest.param([PY, "-m", "plugwire.ttrpc.example"], id="ttrpc-none", marks=pytest.mark.ttrpc),
    pytest.param(
        [PY, "-m", "plugwire.ttrpc.example", "dance", "x"], id="ttrpc-cmd", marks=pytest.mark.ttrpc
    ),
    pytest.param(
        [PY, "-m", "plugwire.grpc.cipd.example", "--bogus"], id="cipd", marks=pytest.mark.cipd
    ),
    pytest.param([PY, "-m", "plugwire.grpc.tasks"], id="tasks-none", marks=pytest.mark.tasks),
    pytest.param(
        [PY, "-m", "plugwire.grpc.tasks", "no_such_module:x"],
        id="tasks-import",
        marks=pytest.mark.tasks,
    ),
    pytest.param([str(BIN / "plugwire"), "--bogus"], id="cli-option", marks=pytest.mark.tasks),
    pytest.param(
        [str(BIN / "plugwire"), "task", "run"], id="cli-task-missing", marks=pytest.mark.tasks
    ),
    pytest.param(
        [PY, "-m", "plugwire.http.drp._demo_provider", "listen", "only-one"],
        id="drp-provider",
        marks=pytest.mark.drp,
    ),
]


@pytest.mark.parametrize("argv", BAD_ARGS)
def test_bad_arguments_print_usage_and_one_error_line(argv: list[str]) -> None:
    proc = _run(argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[0].lower().startswith("usage:"), proc.stderr
    errors = [line for line in lines if "error:" in line.lower()]
    assert len(errors) == 1, proc.stderr


MISSING_PEER = [
    pytest.param(
        [PY, "-m", "plugwire.ttrpc.nri.example", "--name", "x", "--idx", "10", "--socket", NOPE],
        "ConnectionClosedError",
        id="nri",
        marks=pytest.mark.nri,
    ),
    pytest.param(
        [PY, "-m", "plugwire.ttrpc.example", "call", NOPE],
        "ConnectionClosedError",
        id="ttrpc",
        marks=pytest.mark.ttrpc,
    ),
    pytest.param(
        [PY, "-m", "plugwire.grpc.cipd.example"],
        "stdin closed before the handshake",
        id="cipd",
        marks=pytest.mark.cipd,
    ),
]


@pytest.mark.parametrize(("argv", "what"), MISSING_PEER)
def test_missing_peer_is_one_typed_error_line(argv: list[str], what: str) -> None:
    proc = _run(argv)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and what in lines[0], proc.stderr
    assert "peer=" in lines[0] and "step=" in lines[0]
