"""The docs example (host.py + plugin.py), the bundled example plugin and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.gobuild import build_go

from plugwire.grpc.cipd._demo import demo

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "cipd"


def run_host(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "host.py"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_docs_example_host_and_plugin() -> None:
    lines = run_host()
    assert lines[0] == "ADMITTED  infra/tools/deployer"
    assert lines[1].startswith('DENIED    infra/tools/unvetted: none of 1 "allowed-sha256"')
    assert lines[2] == "DENIED    experimental/new-tool: experimental packages are not allowed"
    assert lines[3] == "plugin version: docs example 1.0"


def test_docs_example_plugin_reads_its_environment() -> None:
    lines = run_host(env={"ADMISSION_REQUIRE_REVIEW": "1"})
    assert lines[0] == "ADMITTED  infra/tools/deployer"  # it has a reviewed-by entry


def test_bundled_example_module_under_the_docs_host() -> None:
    lines = run_host(sys.executable, "-m", "plugwire.grpc.cipd.example")
    assert lines[0] == "ADMITTED  infra/tools/deployer"
    assert lines[2] == "DENIED    experimental/new-tool: experimental packages are not allowed"
    assert lines[3] == "plugin version: plugwire example 1.0"


@pytest.mark.interop
def test_docs_example_host_runs_luci_example_plugin() -> None:
    binary = build_go(
        "cipd",
        "go.chromium.org/luci/cipd/client/cipd/plugin/plugins/admission/example",
        name="luci-admission-example",
    )
    lines = run_host(str(binary))
    assert lines[0] == "ADMITTED  infra/tools/deployer"
    assert lines[1] == (
        "DENIED    infra/tools/unvetted: evaluated 1 metadata entries with key "
        '"allowed-sha256" and none is valid'
    )
    assert lines[3].startswith("plugin version: example 1.0")


@pytest.mark.anyio
async def test_demo_rows_all_ok() -> None:
    rows = await demo()
    assert [r.check for r in rows] == [
        "admission via metadata",
        "not admitted (FailedPrecondition)",
        "Host.Log -> logging",
        "one promise per pin",
        "close: stdin EOF, then aborted",
    ]
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]
    assert all(r.family == "cipd" for r in rows)
