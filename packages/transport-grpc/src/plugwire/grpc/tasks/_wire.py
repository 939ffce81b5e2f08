"""Shared wire details of out-of-process task plugins: handshake, names, errors."""

from __future__ import annotations

import json
from typing import Any

from plugwire.core.handshake import Handshake
from plugwire.core.tasks.errors import (
    FatalInternalError,
    MalformedPayloadError,
    NonFatalInternalError,
    TaskPluginError,
)

from ._generated import task_plugin_pb2 as pb

SERVICE = "plugwire.tasks.v1.TaskPluginService"
PROTOCOL_VERSIONS = (1,)
#: The go-plugin handshake of task plugins (the cookie is a UX guard).
HANDSHAKE = Handshake("PLUGWIRE_TASK_PLUGIN", "8c0f6b3e-task-plugin", PROTOCOL_VERSIONS)
#: The name the TaskPluginService is dispensed under in the go-plugin plugin set.
PLUGIN_NAME = "task_plugin"


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def error_to_pb(exc: BaseException) -> pb.TaskError:
    """A plugin's exception as a TaskError (kind by class, messages, type name)."""
    if isinstance(exc, MalformedPayloadError):
        return pb.TaskError(
            kind=pb.TaskError.MALFORMED_PAYLOAD,
            messages=list(exc.messages),
            type=type(exc).__name__,
        )
    kind = pb.TaskError.NON_FATAL if isinstance(exc, NonFatalInternalError) else pb.TaskError.FATAL
    return pb.TaskError(kind=kind, messages=[str(exc)], type=type(exc).__name__)


def error_from_pb(err: pb.TaskError, *, peer: str, step: str) -> TaskPluginError:
    """The TaskPluginError a TaskError stands for (unknown kinds are fatal)."""
    messages = list(err.messages) or ["(no message)"]
    if err.kind == pb.TaskError.MALFORMED_PAYLOAD:
        return MalformedPayloadError(*messages, peer=peer, step=step)
    text = "; ".join(messages)
    if err.type:
        text = f"{err.type}: {text}"
    cls = NonFatalInternalError if err.kind == pb.TaskError.NON_FATAL else FatalInternalError
    return cls(f"out-of-process plugin failed: {text}", peer=peer, step=step)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
