"""The plugin in process, running a real task through plugwire's manager (both backends)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
from plugwire.core.tasks import MalformedPayloadError
from tasks_support import logged, run_one

from {{ cookiecutter.package_name }}.plugin import PLUGIN_NAME, Provider

ROOT = Path(__file__).resolve().parent.parent


def test_entry_point_names_the_provider() -> None:
    """Installed, the project registers the plugin in process under its name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["plugwire.task_plugins"][PLUGIN_NAME]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is Provider


@pytest.mark.anyio
async def test_labels_reach_the_task(tmp_path: Path) -> None:
    labels = {"team": "platform", "tier": "gold"}
    result, log = await run_one(Provider(), tmp_path, labels, {"required": ["team"]})
    assert result.resolution == "completed", result.error
    assert "team=platform tier=gold" in log
    assert logged(log, f"{PLUGIN_NAME}: exported 2 label(s)")
    assert logged(log, f"{PLUGIN_NAME}: the task exited with 0")


@pytest.mark.anyio
async def test_missing_required_label_is_a_malformed_payload(tmp_path: Path) -> None:
    result, log = await run_one(Provider(), tmp_path, {"tier": "gold"}, {"required": ["team"]})
    assert result.resolution == "exception"
    assert isinstance(result.error, MalformedPayloadError)
    assert "'team' is required" in str(result.error)
    assert not any(line.startswith("team=") for line in log)  # the task never ran


@pytest.mark.anyio
async def test_schema_refuses_bad_labels(tmp_path: Path) -> None:
    result, _ = await run_one(Provider(), tmp_path, {"team": 7}, {})
    assert result.resolution == "exception"
    assert isinstance(result.error, MalformedPayloadError)
