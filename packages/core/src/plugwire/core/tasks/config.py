"""The worker configuration file of ``plugwire task run`` (JSON).

::

    {
      "plugins": {"env": {}, "success": {}, "tasklog": {"directory": "logs"}},
      "engine": {"root": "/tmp/tasks", "env": {"LANG": "C"}, "inherit_env": false,
                 "kill_grace": 2, "keep_working_dirs": false},
      "stage_timeout": 300,
      "external": {"recorder": {"command": ["python", "plugin.py"], "env": {}}}
    }

``plugins`` is the plugin manager configuration (plugin name -> its config, plus
``disabled``). ``external`` names plugins served by another process over gRPC
(``plugwire[grpc]``); each must also be enabled in ``plugins``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError
from .manager import DEFAULT_STAGE_TIMEOUT
from .schema import schema_errors

__all__ = ["DEFAULT_PLUGINS", "WORKER_CONFIG_SCHEMA", "WorkerConfig", "load_json"]

#: The plugins enabled when no configuration file is given.
DEFAULT_PLUGINS: dict[str, Any] = {"env": {}, "success": {}, "maxruntime": {}, "tasklog": {}}

WORKER_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "plugins": {"type": "object"},
        "engine": {
            "type": "object",
            "properties": {
                "root": {"type": "string", "minLength": 1},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "inherit_env": {"type": "boolean"},
                "kill_grace": {"type": "number", "minimum": 0},
                "keep_working_dirs": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "stage_timeout": {"type": "number", "exclusiveMinimum": 0},
        "external": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "env": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "required": ["command"],
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


@attrs.frozen
class WorkerConfig:
    """A validated worker configuration (see the module docstring)."""

    plugins: dict[str, Any] = attrs.field(factory=lambda: dict(DEFAULT_PLUGINS))
    engine: dict[str, Any] = attrs.field(factory=dict)
    stage_timeout: float = DEFAULT_STAGE_TIMEOUT
    external: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    @classmethod
    def from_dict(cls, data: object, *, source: str = "config") -> WorkerConfig:
        """Validate ``data``; raises :class:`ConfigError` listing every problem."""
        messages = schema_errors(WORKER_CONFIG_SCHEMA, data, root="config")
        if messages:
            raise ConfigError(
                "invalid worker configuration:\n - " + "\n - ".join(messages),
                step="worker config",
                seen=source,
            )
        assert isinstance(data, dict)
        return cls(
            plugins=dict(data.get("plugins", DEFAULT_PLUGINS)),
            engine=dict(data.get("engine", {})),
            stage_timeout=float(data.get("stage_timeout", DEFAULT_STAGE_TIMEOUT)),
            external=dict(data.get("external", {})),
        )


def load_json(path: str | Path, *, what: str) -> Any:
    """Parse a JSON file; raises :class:`ConfigError` naming the file and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} file: {exc.strerror}", step=f"read {what}", seen=str(path)
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} file is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            step=f"read {what}",
            seen=str(path),
        ) from None
