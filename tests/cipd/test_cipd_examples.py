"""The docs example (host.py + plugin.py), the bundled example plugin and the demo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.gobuild import build_go

from plugwire.grpc.cipd import HashAlgo, ObjectRef
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


@pytest.mark.interop
def test_luci_host_runs_the_docs_example_plugin(tmp_path: Path) -> None:
    """luci's own host (cmd/cipdhost) drives docs/examples/cipd/plugin.py."""
    binary = build_go("cipd", "./cmd/cipdhost")
    digest = hashlib.sha256(b"tool").hexdigest()
    iid = ObjectRef(HashAlgo.SHA256, digest).instance_id
    scenario = {
        "service_url": "https://cipd.example.com",
        "plugin": [sys.executable, str(EXAMPLES / "plugin.py")],
        "metadata": {
            f"infra/tool@{iid}": [{"key": "allowed-sha256", "value": digest}],
            f"infra/other@{iid}": [{"key": "allowed-sha256", "value": "0" * 64}],
        },
        "batches": [
            [
                {"package": "infra/tool", "instance_id": iid},
                {"package": "infra/other", "instance_id": iid},
                {"package": "experimental/x", "instance_id": iid},
            ]
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    proc = subprocess.run(
        [str(binary), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()][:-1]
    assert [(r["package"], r["code"]) for r in results] == [
        ("infra/tool", "OK"),
        ("infra/other", "FailedPrecondition"),
        ("experimental/x", "FailedPrecondition"),
    ]
    assert results[2]["message"] == "experimental packages are not allowed"
    assert "admitted infra/tool" in proc.stderr  # the plugin's log line, via Host.Log
