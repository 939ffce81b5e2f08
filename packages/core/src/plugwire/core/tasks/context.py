"""The per-task context: identity, the task log, and run-scoped background work."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.abc
import attrs

from ..errors import ClosedError

__all__ = ["LogSink", "TaskContext", "TaskInfo"]

#: Receives each task-log line (without its newline).
LogSink = Callable[[str], None]

_logger = logging.getLogger("plugwire.tasks")


@attrs.frozen
class TaskInfo:
    """Who the task is: ``task_id`` and ``run_id``."""

    task_id: str
    run_id: int = 0


class TaskContext:
    """What every plugin and the engine share for one task run.

    * The task log: the engine writes the task's output with :meth:`write_log`,
      plugins and the worker add messages with :meth:`log` / :meth:`log_error`; sinks
      added with :meth:`add_log_sink` (the ``tasklog`` plugin, the CLI) receive every
      line. :meth:`close_log` happens before the ``finished`` stage: after it,
      :meth:`write_log` raises :class:`~plugwire.core.errors.ClosedError` and
      :meth:`log` / :meth:`log_error` go to :mod:`logging` only.
    * :meth:`start_soon` runs background work (a max-run-time watchdog, an output
      pump) in a task group owned by the run, cancelled once the task is disposed.
    """

    def __init__(self, info: TaskInfo, *, tail_lines: int = 200) -> None:
        self.info = info
        self._sinks: list[LogSink] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._log_closed = False
        self._task_group: anyio.abc.TaskGroup | None = None

    @property
    def task_id(self) -> str:
        return self.info.task_id

    @property
    def run_id(self) -> int:
        return self.info.run_id

    # -- the task log -------------------------------------------------------------
    def add_log_sink(self, sink: LogSink) -> None:
        """Call ``sink(line)`` for every line written to the task log from now on."""
        self._sinks.append(sink)

    def remove_log_sink(self, sink: LogSink) -> None:
        """Stop sending lines to ``sink`` (no error if it was not added)."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def log_closed(self) -> bool:
        return self._log_closed

    @property
    def log_tail(self) -> list[str]:
        """The last lines of the task log (at most ``tail_lines``)."""
        return list(self._tail)

    def write_log(self, text: str) -> None:
        """Append ``text`` (one or more lines) to the task log."""
        if self._log_closed:
            raise ClosedError(
                "the task log is closed", peer=self.info.task_id, step="write task log"
            )
        for line in text.splitlines() or [""]:
            self._tail.append(line)
            for sink in list(self._sinks):
                try:
                    sink(line)
                except Exception:  # a broken sink must not break the task
                    _logger.exception("task-log sink %r failed; removing it", sink)
                    self.remove_log_sink(sink)

    def log(self, message: str) -> None:
        """A worker message in the task log: ``[plugwire] message``.

        Dropped (logged through :mod:`logging` instead) when the log is closed, as in
        the ``finished``, ``exception`` and ``dispose`` stages (upstream drops them).
        """
        if self._log_closed:
            _logger.info("task %s (log closed): %s", self.info.task_id, message)
            return
        self.write_log(f"[plugwire] {message}")

    def log_error(self, message: str) -> None:
        """A worker error in the task log: ``[plugwire:error] message``.

        Dropped (logged through :mod:`logging` instead) when the log is closed, as in
        the ``exception`` and ``dispose`` stages.
        """
        if self._log_closed:
            _logger.error("task %s: %s", self.info.task_id, message)
            return
        self.write_log(f"[plugwire:error] {message}")

    def close_log(self) -> None:
        """Close the task log: later writes raise :class:`ClosedError`. Idempotent."""
        self._log_closed = True

    # -- background work ----------------------------------------------------------
    def bind(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Attach (or with ``None`` detach) the task group :meth:`start_soon` uses."""
        self._task_group = task_group

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The run's task group (for APIs that need one, like ``PluginProcess.start``).

        Raises :class:`ClosedError` when the context is not bound to a running task.
        """
        if self._task_group is None:
            raise ClosedError(
                "the task context is not running", peer=self.info.task_id, step="task_group"
            )
        return self._task_group

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object, name: str | None = None
    ) -> None:
        """Run ``func(*args)`` in the background until it returns or the run ends.

        Raises :class:`ClosedError` when the context is not bound to a running task.
        """
        if self._task_group is None:
            raise ClosedError(
                "the task context is not running", peer=self.info.task_id, step="start_soon"
            )
        self._task_group.start_soon(func, *args, name=name)
