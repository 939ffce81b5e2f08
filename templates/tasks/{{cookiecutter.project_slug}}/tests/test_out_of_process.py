"""The plugin executable, launched for real by a worker (out of process, over gRPC)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plugwire.core.tasks import MalformedPayloadError
from plugwire.grpc.tasks import RemoteProvider
from tasks_support import logged, run_one

from {{ cookiecutter.package_name }}.plugin import PLUGIN_NAME

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only


async def test_remote_plugin_runs_a_task(plugin_command: list[str], tmp_path: Path) -> None:
    provider = RemoteProvider(plugin_command)
    labels = {"team": "platform", "tier": "gold"}
    result, log = await run_one(provider, tmp_path, labels, {"required": ["team"]})
    assert result.resolution == "completed", result.error
    assert "team=platform tier=gold" in log
    assert logged(log, f"{PLUGIN_NAME}: exported 2 label(s)")  # by the plugin process

    result, _ = await run_one(RemoteProvider(plugin_command), tmp_path, {}, {"required": ["team"]})
    assert isinstance(result.error, MalformedPayloadError)
    assert "'team' is required" in str(result.error)


def test_worker_cli_with_the_external_plugin(plugin_command: list[str], tmp_path: Path) -> None:
    """``plugwire task run payload.json -c worker-external.json``, as in the README."""
    worker = json.loads((EXAMPLES / "worker-external.json").read_text())
    for spec in worker["external"].values():
        spec["command"] = plugin_command  # the installed console script, in real life
    worker["engine"] = {"root": str(tmp_path / "work")}
    config = tmp_path / "worker.json"
    config.write_text(json.dumps(worker))
    argv = [sys.executable, "-m", "plugwire.core.cli", "task", "run"]
    argv += [str(EXAMPLES / "payload.json"), "-c", str(config)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "team=platform tier=gold" in run.stdout
