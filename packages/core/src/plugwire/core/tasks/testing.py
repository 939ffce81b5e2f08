"""Test helpers: a scriptable, recording task plugin and an in-memory engine.

:class:`RecorderProvider` (registered as ``recorder`` in tests and in the out-of-process
example) records every stage its task plugins see — in memory and optionally as JSON
lines in a file, so a plugin in another process can be checked the same way — and
behaves as its *script* says in each stage: succeed, raise, report a malformed payload
or an internal error, hang, or (in ``stopped``) return False. It also records whether
two of its methods ever overlapped. :class:`MemoryEngine` is an engine without
processes whose stages can be scripted to fail, for lifecycle tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import anyio
import anyio.lowlevel
import attrs

from .engine import Engine, ResultSet, Sandbox, SandboxBuilder, SandboxOptions
from .errors import (
    FatalInternalError,
    MalformedPayloadError,
    NamingConflictError,
    NonFatalInternalError,
)
from .plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from .reasons import ExceptionReason
from .schema import JsonSchema, object_schema

__all__ = [
    "ACTIONS",
    "STAGES",
    "Action",
    "MemoryEngine",
    "Record",
    "RecorderProvider",
    "perform",
]

Action = Literal["ok", "error", "malformed", "nonfatal", "fatal", "hang", "false"]
ACTIONS: tuple[Action, ...] = ("ok", "error", "malformed", "nonfatal", "fatal", "hang", "false")
STAGES = (
    "new_task_plugin",
    "build_sandbox",
    "started",
    "stopped",
    "finished",
    "exception",
    "dispose",
)


@attrs.frozen
class Record:
    """One stage call seen by a recorder: plugin, task, stage and its argument."""

    plugin: str
    task_id: str
    stage: str
    arg: str = ""


async def perform(action: str, who: str, stage: str) -> bool:
    """Do what ``action`` says in ``stage``; returns the verdict for ``stopped``."""
    if action == "error":
        raise RuntimeError(f"{who} fails in {stage}")
    if action == "malformed":
        raise MalformedPayloadError(f"{who} rejects the payload in {stage}")
    if action == "nonfatal":
        raise NonFatalInternalError(f"{who} has a non-fatal problem in {stage}", peer=who)
    if action == "fatal":
        raise FatalInternalError(f"{who} has a fatal problem in {stage}", peer=who)
    if action == "hang":
        await anyio.sleep_forever()
    await anyio.lowlevel.checkpoint()
    return action != "false"


class _RecorderTask(TaskPlugin):
    def __init__(self, owner: _Recorder, task_id: str, script: Mapping[str, str]) -> None:
        self._owner = owner
        self._task_id = task_id
        self._script = script

    async def _stage(self, stage: str, arg: str = "") -> bool:
        self._owner.record(self._task_id, stage, arg)
        self._owner.enter()
        try:
            return await perform(self._script.get(stage, "ok"), self._owner.name, stage)
        finally:
            self._owner.leave()

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        await self._stage("build_sandbox")

    async def started(self, sandbox: Sandbox) -> None:
        await self._stage("started")

    async def stopped(self, result: ResultSet) -> bool:
        return await self._stage("stopped", f"success={result.success}")

    async def finished(self, success: bool) -> None:
        await self._stage("finished", f"success={success}")

    async def exception(self, reason: ExceptionReason) -> None:
        await self._stage("exception", reason.value)

    async def dispose(self) -> None:
        await self._stage("dispose")


class _Recorder(Plugin):
    def __init__(self, provider: RecorderProvider, name: str, config: Mapping[str, Any]) -> None:
        self.provider = provider
        self.name = name
        self.script: dict[str, str] = {**provider.script, **config.get("script", {})}
        self.record_file = config.get("record_file")
        self._active = 0

    def record(self, task_id: str, stage: str, arg: str = "") -> None:
        rec = Record(self.name, task_id, stage, arg)
        self.provider.records.append(rec)
        if self.record_file:
            with open(self.record_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(attrs.asdict(rec)) + "\n")

    def enter(self) -> None:
        self._active += 1
        if self._active > 1:
            self.provider.overlaps += 1

    def leave(self) -> None:
        self._active -= 1

    def payload_schema(self) -> JsonSchema:
        return self.provider.payload

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        task_id = options.info.task_id
        self.record(task_id, "new_task_plugin", json.dumps(dict(options.payload), sort_keys=True))
        self.enter()
        try:
            await perform(self.script.get("new_task_plugin", "ok"), self.name, "new_task_plugin")
        finally:
            self.leave()
        return _RecorderTask(self, task_id, self.script)


class RecorderProvider(PluginProvider):
    """Creates recording plugins.

    ``script`` maps stage names to actions (``ok``, ``error``, ``malformed``,
    ``nonfatal``, ``fatal``, ``hang``, ``false``); the plugin configuration may
    override it (``{"script": {...}, "record_file": "/path"}``). ``payload`` is the
    plugin's payload schema. Every call lands in :attr:`records`; :attr:`overlaps`
    counts calls that began while another of the same plugin was running.
    """

    def __init__(
        self, script: Mapping[str, str] | None = None, payload: JsonSchema | None = None
    ) -> None:
        self.script = dict(script or {})
        self.payload = payload if payload is not None else object_schema()
        self.records: list[Record] = []
        self.overlaps = 0

    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {
                "script": {
                    "type": "object",
                    "propertyNames": {"enum": list(STAGES)},
                    "additionalProperties": {"enum": list(ACTIONS)},
                },
                "record_file": {"type": "string"},
            },
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _Recorder(self, options.name, options.config or {})

    def stages(self, plugin: str | None = None, task_id: str | None = None) -> list[str]:
        """The stages recorded (for one plugin / task when given), in order."""
        return [
            r.stage
            for r in self.records
            if (plugin is None or r.plugin == plugin) and (task_id is None or r.task_id == task_id)
        ]


# -- an in-memory engine ------------------------------------------------------------


class _MemoryResult(ResultSet):
    def __init__(self, engine: MemoryEngine, aborted: bool) -> None:
        self._engine = engine
        self._aborted = aborted

    @property
    def success(self) -> bool:
        return self._engine.exit_code == 0 and not self._aborted

    @property
    def exit_code(self) -> int | None:
        return self._engine.exit_code

    @property
    def aborted(self) -> bool:
        return self._aborted

    async def dispose(self) -> None:
        self._engine.log.append("result.dispose")


class _MemorySandbox(Sandbox):
    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._aborted = False
        self._abort_event = anyio.Event()

    async def wait_for_result(self) -> ResultSet:
        self._engine.log.append("wait_for_result")
        action = self._engine.script.get("wait_for_result", "ok")
        if action == "hang":  # runs until aborted, like a real task
            await self._abort_event.wait()
        else:
            await perform(action, "engine", "wait")
        return _MemoryResult(self._engine, self._aborted)

    async def abort(self) -> None:
        self._engine.log.append("abort")
        self._aborted = True
        self._abort_event.set()


class _MemoryBuilder(SandboxBuilder):
    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self.env: dict[str, str] = {}

    def set_environment_variable(self, name: str, value: str) -> None:
        if name in self.env:
            raise NamingConflictError(f"environment variable {name!r} is already set")
        self.env[name] = value

    async def start_sandbox(self) -> Sandbox:
        self._engine.log.append("start_sandbox")
        await perform(self._engine.script.get("start_sandbox", "ok"), "engine", "start")
        return _MemorySandbox(self._engine)

    async def discard(self) -> None:
        self._engine.log.append("discard")


class MemoryEngine(Engine):
    """An engine without processes: the task "exits" with ``exit_code``.

    ``script`` maps ``new_sandbox_builder``, ``start_sandbox`` and ``wait_for_result``
    to actions, so engine failures can be injected; :attr:`log` records its calls.
    """

    def __init__(
        self,
        *,
        exit_code: int = 0,
        script: Mapping[str, str] | None = None,
        payload: JsonSchema | None = None,
    ) -> None:
        self.exit_code = exit_code
        self.script = dict(script or {})
        self.payload = payload if payload is not None else object_schema()
        self.log: list[str] = []

    def payload_schema(self) -> JsonSchema:
        return self.payload

    async def new_sandbox_builder(self, options: SandboxOptions) -> SandboxBuilder:
        self.log.append("new_sandbox_builder")
        await perform(self.script.get("new_sandbox_builder", "ok"), "engine", "builder")
        return _MemoryBuilder(self)
