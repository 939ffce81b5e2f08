"""``maxruntime``: abort the task once it has run ``maxRunTime`` seconds.

Payload ``maxRunTime`` (seconds, up to a day); configuration ``default`` applies when
the payload gives none (no limit without either). A task aborted this way fails:
``stopped`` returns False and the task log says why.
"""

from __future__ import annotations

import anyio

from ..context import TaskContext
from ..engine import ResultSet, Sandbox
from ..plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from ..schema import JsonSchema, object_schema

__all__ = ["MaxRunTimeProvider"]

_LIMIT: JsonSchema = {"type": "number", "exclusiveMinimum": 0, "maximum": 86400}
_PAYLOAD = object_schema(
    {
        "maxRunTime": {
            **_LIMIT,
            "title": "Maximum run time (s)",
            "description": "Abort the task when it runs longer than this.",
        }
    }
)


class _MaxRunTimeTask(TaskPlugin):
    def __init__(self, context: TaskContext, limit: float | None) -> None:
        self._context = context
        self._limit = limit
        self._done = anyio.Event()
        self.fired = False

    async def started(self, sandbox: Sandbox) -> None:
        if self._limit is not None:
            self._context.start_soon(self._watch, sandbox, name="maxruntime watchdog")

    async def _watch(self, sandbox: Sandbox) -> None:
        assert self._limit is not None
        with anyio.move_on_after(self._limit):
            await self._done.wait()
        if self._done.is_set():
            return
        self.fired = True
        if not self._context.log_closed:
            self._context.log_error(f"task aborted: maximum run time of {self._limit:g} s exceeded")
        await sandbox.abort()

    async def stopped(self, result: ResultSet) -> bool:
        self._done.set()
        return not self.fired

    async def dispose(self) -> None:
        self._done.set()


class _MaxRunTimePlugin(Plugin):
    def __init__(self, default: float | None) -> None:
        self._default = default

    def payload_schema(self) -> JsonSchema:
        return _PAYLOAD

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        limit = options.payload.get("maxRunTime", self._default)
        return _MaxRunTimeTask(options.context, float(limit) if limit is not None else None)


class MaxRunTimeProvider(PluginProvider):
    """Provider of the ``maxruntime`` plugin; config ``{"default": seconds}`` (optional)."""

    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {"default": _LIMIT},
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _MaxRunTimePlugin((options.config or {}).get("default"))
