"""Task plugins from blocking code, through plugwire.core.blocking."""

from __future__ import annotations

from pathlib import Path

from plugwire.core.blocking import BlockingHost
from plugwire.core.tasks.local import LocalProcessEngine
from plugwire.core.tasks.manager import PluginManager
from plugwire.core.tasks.run import run_task


def test_blocking_manager_runs_tasks(tmp_path: Path) -> None:
    engine = LocalProcessEngine(root=tmp_path / "work")
    with BlockingHost() as host:
        manager = host.enter(PluginManager.open({"success": {}}, engine=engine, stage_timeout=10))
        assert "success" in manager.names
        ok = host.call(run_task, manager, engine, {"command": ["true"]})
        bad = host.call(run_task, manager, engine, {"command": ["false"]})
    assert ok.success and not bad.success
