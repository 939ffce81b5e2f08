"""Run one task with the built-in plugins plus a plugin defined right here.

    python docs/examples/tasks/run_task.py            # from the repository root

The ``stopwatch`` plugin logs how long each stage took and fails the task when it
ran longer than the payload's ``budget`` (seconds). It is registered with
``register()``; the built-ins come from the ``plugwire.task_plugins`` entry points.
"""

from __future__ import annotations

import sys
import tempfile
import time

import anyio

from plugwire.core.tasks import (
    ExceptionReason,
    JsonSchema,
    Plugin,
    PluginManager,
    PluginOptions,
    PluginProvider,
    ResultSet,
    Sandbox,
    TaskContext,
    TaskInfo,
    TaskPlugin,
    TaskPluginOptions,
    object_schema,
    register,
    run_task,
)
from plugwire.core.tasks.local import LocalProcessEngine


class StopwatchTask(TaskPlugin):
    def __init__(self, context: TaskContext, budget: float | None) -> None:
        self.context = context
        self.budget = budget
        self.t0 = 0.0

    async def started(self, sandbox: Sandbox) -> None:
        self.t0 = time.monotonic()

    async def stopped(self, result: ResultSet) -> bool:
        took = time.monotonic() - self.t0
        self.context.log(f"stopwatch: the task ran {took:.2f} s")
        return self.budget is None or took <= self.budget

    async def exception(self, reason: ExceptionReason) -> None:
        print(f"stopwatch: task resolved as exception ({reason})")


class StopwatchPlugin(Plugin):
    def payload_schema(self) -> JsonSchema:
        return object_schema({"budget": {"type": "number", "exclusiveMinimum": 0}})

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        return StopwatchTask(options.context, options.payload.get("budget"))


class StopwatchProvider(PluginProvider):
    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return StopwatchPlugin()


async def main() -> int:
    register("stopwatch", StopwatchProvider())
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "env": {},
            "success": {},
            "maxruntime": {},
            "tasklog": {"directory": f"{tmp}/logs"},
            "artifacts": {"directory": f"{tmp}/artifacts"},
            "stopwatch": {},
        }
        engine = LocalProcessEngine(root=f"{tmp}/work")
        payload = {
            "command": [sys.executable, "-c", "import os; print('hi', os.environ['WHO'])"],
            "env": {"WHO": "there"},
            "budget": 10,
            "maxRunTime": 30,
        }
        context = TaskContext(TaskInfo("example-task"))
        context.add_log_sink(lambda line: print("  |", line))
        async with PluginManager.open(config, engine=engine) as manager:
            print("plugins:", ", ".join(manager.names))
            result = await run_task(
                manager,
                engine,
                payload,
                context=context,
                on_event=lambda e: print("stage", e.describe()),
            )
        print("resolution:", result.resolution, "exit code:", result.exit_code)
        lines = (await anyio.Path(f"{tmp}/logs/example-task-0.log").read_text()).splitlines()
        print("task log file:", len(lines), "lines")
        return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
