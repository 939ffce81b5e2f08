"""``tasklog``: the task log to a file and to :mod:`logging`.

Configuration: ``directory`` (optional) — each task's log goes to
``<directory>/<task_id>-<run_id>.log``; ``logger`` (default ``plugwire.tasklog``) —
each line is also an INFO record on ``<logger>.<task_id>``. The file is closed when
the task log closes (``finished`` or ``exception``) and at the latest in ``dispose``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

import anyio.to_thread

from ..context import TaskContext
from ..plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from ..reasons import ExceptionReason
from ..schema import JsonSchema

__all__ = ["TaskLogProvider"]


class _TaskLogTask(TaskPlugin):
    def __init__(self, context: TaskContext, path: Path | None, logger: logging.Logger) -> None:
        self._context = context
        self.path = path
        self._logger = logger
        self._file: IO[str] | None = None

    async def open(self) -> None:
        if self.path is not None:
            path = self.path
            self._file = await anyio.to_thread.run_sync(
                lambda: path.open("a", encoding="utf-8", buffering=1)
            )
        self._context.add_log_sink(self._sink)

    def _sink(self, line: str) -> None:
        self._logger.info("%s", line)
        if self._file is not None:
            self._file.write(line + "\n")

    async def _close(self) -> None:
        self._context.remove_log_sink(self._sink)
        file, self._file = self._file, None
        if file is not None:
            await anyio.to_thread.run_sync(file.close)

    async def finished(self, success: bool) -> None:
        await self._close()

    async def exception(self, reason: ExceptionReason) -> None:
        await self._close()

    async def dispose(self) -> None:
        await self._close()


class _TaskLogPlugin(Plugin):
    def __init__(self, directory: Path | None, logger: str) -> None:
        self._directory = directory
        self._logger = logger

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        info = options.info
        path = None
        if self._directory is not None:
            directory = self._directory
            await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
            path = directory / f"{info.task_id}-{info.run_id}.log"
        task = _TaskLogTask(
            options.context, path, logging.getLogger(f"{self._logger}.{info.task_id}")
        )
        await task.open()
        return task


class TaskLogProvider(PluginProvider):
    """Provider of the ``tasklog`` plugin; config ``{"directory": ..., "logger": ...}``."""

    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {
                "directory": {"type": "string", "minLength": 1},
                "logger": {"type": "string", "minLength": 1},
            },
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        config = options.config or {}
        directory = config.get("directory")
        return _TaskLogPlugin(
            Path(directory) if directory else None, config.get("logger", "plugwire.tasklog")
        )
