"""``env``: set the environment variables named in the payload's ``env`` object."""

from __future__ import annotations

from collections.abc import Mapping

from ..engine import SandboxBuilder
from ..errors import FeatureNotSupportedError, MalformedPayloadError, NamingConflictError
from ..plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from ..schema import JsonSchema, object_schema

__all__ = ["EnvProvider"]

_PAYLOAD = object_schema(
    {
        "env": {
            "title": "Environment variables",
            "description": "Variables to set in the task's environment.",
            "type": "object",
            "additionalProperties": {"type": "string"},
        }
    }
)


class _EnvTask(TaskPlugin):
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        """Set every variable; a conflict or an engine without env is a malformed payload."""
        for name, value in sorted(self._env.items()):
            try:
                builder.set_environment_variable(name, value)
            except NamingConflictError:
                raise MalformedPayloadError(
                    f"environment variable {name!r} has already been set", step="env"
                ) from None
            except FeatureNotSupportedError:
                raise MalformedPayloadError(
                    f"cannot set environment variable {name!r}: the engine does not support it",
                    step="env",
                ) from None


class _EnvPlugin(Plugin):
    def payload_schema(self) -> JsonSchema:
        return _PAYLOAD

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        return _EnvTask(options.payload.get("env", {}))


class EnvProvider(PluginProvider):
    """Provider of the ``env`` plugin (no configuration)."""

    def config_schema(self) -> JsonSchema:
        return {"type": "object", "additionalProperties": False}

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _EnvPlugin()
