"""``plugwire demo`` with everything installed: every family's bundled plugins work."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata


def test_demo_runs_every_installed_family() -> None:
    families = {ep.name for ep in metadata.entry_points(group="plugwire.demos")}
    assert "core" in families
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire.core.cli", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = json.loads(proc.stdout)
    failed = [row for row in rows if not row["ok"] and row["status"] != "SKIP"]
    assert not failed, json.dumps(failed, indent=2) + proc.stderr[-3000:]
    assert {row["family"] for row in rows} == families
    assert proc.returncode == 0
