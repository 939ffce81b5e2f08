"""``plugwire demo`` rows of the task-plugin family: real tasks on the local engine."""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from ..demo import DemoRow
from .context import TaskContext, TaskInfo
from .local import LocalProcessEngine
from .manager import PluginManager
from .run import TaskResult, run_task

__all__ = ["demo"]

_SCRIPT = (
    "import os, pathlib; print('hello from', os.environ['TASK_ID'], os.environ['GREETING']);"
    " pathlib.Path('out').mkdir(); pathlib.Path('out/report.txt').write_text('42')"
)


async def _task(root: Path, payload: dict[str, Any], task_id: str) -> TaskResult:
    config = {
        "env": {},
        "success": {},
        "maxruntime": {},
        "tasklog": {"directory": str(root / "logs")},
        "artifacts": {"directory": str(root / "artifacts")},
    }
    engine = LocalProcessEngine(root=root / "work")
    async with PluginManager.open(config, engine=engine, stage_timeout=10) as manager:
        return await run_task(manager, engine, payload, context=TaskContext(TaskInfo(task_id)))


async def _timed(check: str, fn: Callable[[], Awaitable[tuple[bool, str]]]) -> DemoRow:
    t0 = time.monotonic()
    try:
        ok, detail = await fn()
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return DemoRow("tasks", check, ok, detail, time.monotonic() - t0)


async def demo() -> Sequence[DemoRow]:
    """Run a real task through every stage, three bad tasks, and (with plugwire[grpc])
    a plugin in another process."""
    rows: list[DemoRow] = []
    with tempfile.TemporaryDirectory(prefix="plugwire-tasks-demo-") as tmp:
        root = Path(tmp)

        async def good() -> tuple[bool, str]:
            payload = {
                "command": [sys.executable, "-c", _SCRIPT],
                "env": {"GREETING": "bonjour"},
                "maxRunTime": 30,
                "artifacts": [{"path": "out/report.txt"}],
            }
            r = await _task(root, payload, "demo-good")
            artifact = root / "artifacts" / "demo-good" / "0" / "out" / "report.txt"
            log = (root / "logs" / "demo-good-0.log").read_text()
            ok = r.success and artifact.read_text() == "42" and "hello from demo-good" in log
            return (
                ok,
                f"{r.resolution}, exit {r.exit_code}, {len(r.events)} stages, artifact copied",
            )

        async def malformed() -> tuple[bool, str]:
            r = await _task(root, {"command": "not a list", "maxRunTime": -1}, "demo-bad")
            n = len(getattr(r.error, "messages", ()))
            return r.reason is not None and r.reason.value == "malformed-payload" and n == 2, (
                f"{r.resolution} ({r.reason}), {n} schema messages"
            )

        async def missing() -> tuple[bool, str]:
            r = await _task(root, {"command": ["no-such-command-plugwire"]}, "demo-missing")
            return r.resolution == "exception", f"{r.reason}: {r.error}"

        async def maxruntime() -> tuple[bool, str]:
            r = await _task(root, {"command": ["sleep", "30"], "maxRunTime": 0.5}, "demo-slow")
            return r.resolution == "failed" and (r.exit_code or 0) < 0, (
                f"{r.resolution}, exit {r.exit_code} (aborted after 0.5 s)"
            )

        rows.append(await _timed("in-process plugins run a real local task", good))
        rows.append(await _timed("payload failing the merged schema", malformed))
        rows.append(await _timed("sandbox command that does not exist", missing))
        rows.append(await _timed("maxRunTime aborts a long task", maxruntime))
    try:
        grpc_tasks: Any = importlib.import_module("plugwire.grpc.tasks")
    except ImportError:
        rows.append(DemoRow("tasks", "out-of-process plugin", True, "skipped: no plugwire[grpc]"))
    else:
        rows.extend(await grpc_tasks.demo_rows())
    return rows
