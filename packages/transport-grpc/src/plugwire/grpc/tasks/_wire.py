"""Shared wire details of out-of-process task plugins: handshake, announce, errors."""

from __future__ import annotations

import json
from typing import Any

from plugwire.core.errors import HandshakeError
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
#: The cookie a plugin process checks (a UX guard: "run me through my host").
HANDSHAKE = Handshake("PLUGWIRE_TASK_PLUGIN", "8c0f6b3e-task-plugin", PROTOCOL_VERSIONS)
VERSIONS_ENV = "PLUGWIRE_TASK_PLUGIN_VERSIONS"
CORE_VERSION = 1


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def format_announce(version: int, socket_path: str) -> str:
    """``1|<version>|unix|<path>|grpc|`` — the go-plugin announce line, no certificate."""
    return f"{CORE_VERSION}|{version}|unix|{socket_path}|grpc|"


def parse_announce(line: str, *, peer: str) -> tuple[int, str]:
    """(protocol version, socket path) from an announce line; HandshakeError otherwise."""
    parts = line.strip().split("|")
    expected = "CORE|VERSION|unix|PATH|grpc|"
    if len(parts) != 6 or parts[0] != str(CORE_VERSION) or parts[4] != "grpc":
        raise HandshakeError(
            "malformed announce line", peer=peer, step="announce", expected=expected, seen=line
        )
    if parts[2] != "unix" or not parts[3]:
        raise HandshakeError(
            "task plugins announce a unix socket",
            peer=peer,
            step="announce",
            expected=expected,
            seen=line,
        )
    if not parts[1].isdigit() or int(parts[1]) not in PROTOCOL_VERSIONS:
        raise HandshakeError(
            "unsupported task-plugin protocol version",
            peer=peer,
            step="announce",
            expected=f"one of {list(PROTOCOL_VERSIONS)}",
            seen=parts[1],
        )
    return int(parts[1]), parts[3]


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
