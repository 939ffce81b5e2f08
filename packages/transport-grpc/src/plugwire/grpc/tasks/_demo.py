"""``plugwire demo`` rows for out-of-process task plugins (called by the tasks demo)."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from plugwire.core.demo import DemoRow
from plugwire.core.tasks.local import LocalProcessEngine
from plugwire.core.tasks.manager import PluginManager
from plugwire.core.tasks.registry import Registry
from plugwire.core.tasks.run import run_task
from plugwire.core.tasks.testing import RecorderProvider

__all__ = ["demo_rows"]

RECORDER = "plugwire.core.tasks.testing:RecorderProvider"


def _stages(path: Path, plugin: str) -> list[str]:
    import json

    lines = path.read_text().splitlines() if path.exists() else []
    return [r["stage"] for r in map(json.loads, lines) if r["plugin"] == plugin]


async def demo_rows() -> Sequence[DemoRow]:
    """A recorder in process and the same recorder in a plugin process, one task each way."""
    from .client import RemoteProvider

    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="plugwire-tasks-grpc-demo-") as tmp:
            record = Path(tmp) / "records.jsonl"
            reg = Registry().copy()
            reg.register("local", RecorderProvider())
            reg.register(
                "remote", RemoteProvider([sys.executable, "-m", "plugwire.grpc.tasks", RECORDER])
            )
            config = {
                "success": {},
                "local": {"record_file": str(record)},
                "remote": {"record_file": str(record)},
            }
            engine = LocalProcessEngine(root=Path(tmp) / "work")
            async with PluginManager.open(
                config, registry=reg, engine=engine, stage_timeout=10
            ) as m:
                result = await run_task(m, engine, {"command": ["true"]})
            local, remote = _stages(record, "local"), _stages(record, "remote")
            ok = result.success and local == remote and len(local) == 6
            detail = f"{result.resolution}; both saw {' > '.join(remote)}"
            if local != remote:
                detail = f"in process {local} != out of process {remote}"
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return [
        DemoRow(
            "tasks",
            "out-of-process plugin over gRPC = in-process stages",
            ok,
            detail,
            time.monotonic() - t0,
        )
    ]
