"""Run one task through plugwire's manager and local-process engine (what a worker does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugwire.core.tasks import (
    PluginManager,
    PluginProvider,
    Registry,
    TaskContext,
    TaskInfo,
    TaskResult,
    run_task,
)
from plugwire.core.tasks.local import LocalProcessEngine

from {{ cookiecutter.package_name }}.plugin import ENV_PREFIX, PAYLOAD_KEY, PLUGIN_NAME

COMMAND = ["sh", "-c", f'echo "team=${ENV_PREFIX}TEAM tier=${ENV_PREFIX}TIER"']


async def run_one(
    provider: PluginProvider, root: Path, labels: Any, config: Any
) -> tuple[TaskResult, list[str]]:
    """Run ``COMMAND`` with ``provider`` as the only plugin; (result, task log lines)."""
    registry = Registry(entry_points=())
    registry.register(PLUGIN_NAME, provider)
    engine = LocalProcessEngine(root=root)
    context = TaskContext(TaskInfo("task-1"))
    lines: list[str] = []
    context.add_log_sink(lines.append)
    payload = {"command": COMMAND, PAYLOAD_KEY: labels}
    async with PluginManager.open({PLUGIN_NAME: config}, registry=registry) as manager:
        result = await run_task(manager, engine, payload, context=context)
    return result, lines


def logged(lines: list[str], message: str) -> bool:
    """Whether a plugin wrote ``message`` to the task log (plugin lines are prefixed)."""
    return any(line.endswith(message) for line in lines)
