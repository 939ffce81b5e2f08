"""Why a task was resolved as an exception, and the names of the lifecycle stages."""

from __future__ import annotations

import enum

__all__ = ["ExceptionReason", "Stage"]


class ExceptionReason(enum.StrEnum):
    """The reason handed to ``TaskPlugin.exception`` (taskcluster's resolution reasons).

    Plugins must handle reasons they do not know: more may be added.
    """

    CANCELED = "canceled"
    WORKER_SHUTDOWN = "worker-shutdown"
    MALFORMED_PAYLOAD = "malformed-payload"
    RESOURCE_UNAVAILABLE = "resource-unavailable"
    INTERNAL_ERROR = "internal-error"
    SUPERSEDED = "superseded"
    INTERMITTENT_TASK = "intermittent-task"


class Stage(enum.StrEnum):
    """The stages of one task run, in order (``exception`` and ``dispose`` come last)."""

    VALIDATE = "validate"
    NEW_TASK_PLUGIN = "new_task_plugin"
    NEW_SANDBOX_BUILDER = "new_sandbox_builder"
    BUILD_SANDBOX = "build_sandbox"
    START_SANDBOX = "start_sandbox"
    STARTED = "started"
    WAIT_FOR_RESULT = "wait_for_result"
    STOPPED = "stopped"
    FINISHED = "finished"
    EXCEPTION = "exception"
    DISPOSE = "dispose"
