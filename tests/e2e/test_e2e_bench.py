"""``plugwire bench``: the suites are listed, and a quick run writes the documented JSON.

These are smoke runs (``--quick``): they check that each suite's contenders start,
answer and are reported with ratios against the baseline, not how fast they are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytestmark = [pytest.mark.interop]

SUITES = ["goplugin", "mtls", "ttrpc", "nri", "cipd", "drp", "tasks", "kube", "terraform"]

NUMBER_OR_NULL = {"type": ["number", "null"]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["suite", "contenders", "ratios"],
    "additionalProperties": False,
    "properties": {
        "suite": {"type": "string"},
        "contenders": {
            "type": "object",
            "minProperties": 2,
            "additionalProperties": {
                "type": "object",
                "required": [
                    "p50_us",
                    "p99_us",
                    "calls_per_s",
                    "cold_start_ms",
                    "cold_start_rounds_ms",
                ],
                "additionalProperties": False,
                "properties": {
                    "p50_us": NUMBER_OR_NULL,
                    "p99_us": NUMBER_OR_NULL,
                    "cold_start_ms": NUMBER_OR_NULL,
                    "cold_start_rounds_ms": {"type": "array", "items": {"type": "number"}},
                    "calls_per_s": {
                        "type": "object",
                        "required": ["1", "16", "64"],
                        "additionalProperties": False,
                        "properties": {k: NUMBER_OR_NULL for k in ("1", "16", "64")},
                    },
                },
            },
        },
        "ratios": {"type": "object", "additionalProperties": {"type": "number"}},
        "pairs": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {"type": "number"},
            },
        },
    },
}


def plugwire(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plugwire.core.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_list_names_every_suite() -> None:
    proc = plugwire("--list")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert listed == SUITES
    assert "baseline: Go host <-> Go plugin" in proc.stdout


def test_unknown_suite_is_a_usage_error() -> None:
    proc = plugwire("nosuch")
    assert proc.returncode == 2
    assert "unknown suite 'nosuch'" in proc.stderr and "ttrpc" in proc.stderr


def _quick(suite: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / f"{suite}.json"
    proc = plugwire(suite, "--quick", "--json", str(out), *extra)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "skipped" not in proc.stdout, proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["suite"] == suite
    # Every contender ran and has a ratio against the baseline, which is 1.
    assert set(data["ratios"]) == set(data["contenders"])
    assert all(r > 0 for r in data["ratios"].values())
    return data


@pytest.mark.ttrpc
def test_ttrpc_quick_json_and_plot(tmp_path: Path) -> None:
    svg = tmp_path / "ttrpc.svg"
    data = _quick("ttrpc", tmp_path, "--plot", str(svg))
    assert data["ratios"]["raw asyncio echo (floor)"] == 1.0
    assert {"Go <-> Go", "plugwire <-> plugwire", "Go client -> plugwire server"} <= set(
        data["ratios"]
    )
    pw = data["contenders"]["plugwire <-> plugwire"]
    assert all(pw["calls_per_s"][k] > 0 for k in ("1", "16", "64"))
    assert pw["p99_us"] >= pw["p50_us"] > 0
    assert pw["cold_start_ms"] > 0
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text and "plugwire &lt;-&gt; plugwire" in text


@pytest.mark.goplugin
def test_goplugin_quick_json(tmp_path: Path) -> None:
    data = _quick("goplugin", tmp_path)
    assert data["ratios"]["Go host <-> Go plugin"] == 1.0
    assert {
        "Go host -> plugwire plugin",
        "plugwire host -> Go plugin",
        "plugwire <-> plugwire grpc",
        "bare grpc.aio",
        "python-plugin <-> python-plugin",
        "plugwire <-> plugwire ttrpc (negotiated)",
        "raw asyncio echo (floor)",
    } <= set(data["contenders"])
    for figures in data["contenders"].values():
        assert figures["cold_start_ms"] > 0
    # the issue-14 target is a ratio within this run: negotiated ttrpc over the floor
    for name in ("plugwire <-> plugwire ttrpc (negotiated)", "raw asyncio echo (floor)"):
        assert data["contenders"][name]["p50_us"] > 0
        assert all(v > 0 for v in data["contenders"][name]["calls_per_s"].values())


TERRAFORM_SUITES = [
    "terraform",
    "terraform-plan-50",
    "terraform-apply-1",
    "terraform-apply-50",
    "terraform-launch",
]
GO_PROVIDER = "Go provider (terraform-plugin-framework)"


@pytest.mark.terraform
def test_terraform_quick_json(tmp_path: Path) -> None:
    """`plugwire bench terraform` runs plan/apply of 1 and 50 resources against the Go
    provider (and pyvider when it is installed) and launch against `import grpc`."""
    out = tmp_path / "terraform.json"
    proc = plugwire("terraform", "--quick", "--no-progress", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # pyvider is not a plugwire dependency: measured when installed, else skipped with why.
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("skipped")]
    assert all(line.startswith("skipped pyvider provider: pyvider") for line in skipped), skipped
    data: list[dict[str, Any]] = json.loads(out.read_text())
    assert [d["suite"] for d in data] == TERRAFORM_SUITES
    for suite in data:
        jsonschema.validate(suite, SCHEMA)
        for figures in suite["contenders"].values():
            assert figures["cold_start_ms"] > 0 and figures["p50_us"] is None
    for suite in data[:4]:
        assert suite["ratios"][GO_PROVIDER] == 1.0
        assert "plugwire example provider" in suite["ratios"]
        assert f"plugwire example provider, no fork server / {GO_PROVIDER}" in suite["pairs"]
        pair = suite["pairs"][f"plugwire example provider / {GO_PROVIDER}"]
        assert pair["cold"] == pytest.approx(suite["ratios"]["plugwire example provider"], 0.01)
        if not skipped:
            assert "plugwire example provider / pyvider provider" in suite["pairs"]
    launch = data[4]
    assert launch["ratios"]["python -c 'import grpc'"] == 1.0
    for kind in ("importing", "forked"):
        assert f"plugwire provider launch -> handshake (AutoMTLS), {kind}" in launch["ratios"]
    for title in (
        "terraform plan of 50 resources",
        "terraform apply of one resource",
        "terraform apply of 50 resources",
    ):
        assert title in proc.stdout
    for kind in ("importing", "forked"):
        assert f"ratio plugwire provider launch -> handshake (AutoMTLS), {kind} / python -c" in (
            proc.stdout
        )


def test_tasks_quick_json_all_levels(tmp_path: Path) -> None:
    data = _quick("tasks", tmp_path)
    assert data["ratios"]["bare loop"] == 1.0
    assert data["contenders"]["PluginManager"]["cold_start_ms"] is None
