"""``success``: the task succeeds only if its sandbox did (exit status 0, not aborted)."""

from __future__ import annotations

from ..context import TaskContext
from ..engine import ResultSet
from ..plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from ..schema import JsonSchema

__all__ = ["SuccessProvider"]


class _SuccessTask(TaskPlugin):
    def __init__(self, context: TaskContext) -> None:
        self._context = context

    async def stopped(self, result: ResultSet) -> bool:
        how = "was aborted" if result.aborted else f"exited with code {result.exit_code}"
        verdict = "succeeded" if result.success else "failed"
        self._context.log(f"task {how}: {verdict}")
        return result.success


class _SuccessPlugin(Plugin):
    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        return _SuccessTask(options.context)


class SuccessProvider(PluginProvider):
    """Provider of the ``success`` plugin (no configuration)."""

    def config_schema(self) -> JsonSchema:
        return {"type": "object", "additionalProperties": False}

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _SuccessPlugin()
