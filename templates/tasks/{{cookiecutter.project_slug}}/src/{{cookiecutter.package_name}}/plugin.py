"""The ``{{ cookiecutter.plugin_name }}`` task plugin (taskcluster-worker's plugin model).

The task payload may carry ``{{ cookiecutter.payload_key }}``, an object of strings;
each label is exported to the task as ``{{ cookiecutter.env_prefix }}<NAME>`` (upper
case). The plugin's configuration may list ``required`` labels: a task missing one is
a malformed payload. Every stage writes a line to the task log.

The same :class:`Provider` runs in process (registered under ``{{ cookiecutter.plugin_name }}``
through the ``plugwire.task_plugins`` entry point) or out of process: :func:`main`
serves it over gRPC to the worker that launched this executable.
"""

from __future__ import annotations

from typing import Any

from plugwire.core.tasks import (
    ExceptionReason,
    JsonSchema,
    MalformedPayloadError,
    Plugin,
    PluginOptions,
    PluginProvider,
    ResultSet,
    SandboxBuilder,
    TaskContext,
    TaskPlugin,
    TaskPluginOptions,
    object_schema,
)

PLUGIN_NAME = "{{ cookiecutter.plugin_name }}"
PAYLOAD_KEY = "{{ cookiecutter.payload_key }}"
ENV_PREFIX = "{{ cookiecutter.env_prefix }}"
LABEL_NAME = "^[A-Za-z][A-Za-z0-9_]*$"


class LabelsTask(TaskPlugin):
    """One task: exports the labels, logs each stage."""

    def __init__(self, context: TaskContext, labels: dict[str, str]) -> None:
        self.context = context
        self.labels = labels

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        for name, value in sorted(self.labels.items()):
            builder.set_environment_variable(ENV_PREFIX + name.upper(), value)
        self.context.log(f"{PLUGIN_NAME}: exported {len(self.labels)} label(s)")

    async def stopped(self, result: ResultSet) -> bool:
        self.context.log(f"{PLUGIN_NAME}: the task exited with {result.exit_code}")
        return True  # the task's own success is judged by the `success` plugin

    async def exception(self, reason: ExceptionReason) -> None:
        self.context.log(f"{PLUGIN_NAME}: the task resolved as exception ({reason})")


class LabelsPlugin(Plugin):
    """Worker-wide: the payload schema and the required labels."""

    def __init__(self, required: list[str]) -> None:
        self.required = required

    def payload_schema(self) -> JsonSchema:
        labels = {
            "type": "object",
            "propertyNames": {"pattern": LABEL_NAME},
            "additionalProperties": {"type": "string"},
        }
        return object_schema({PAYLOAD_KEY: labels})

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        labels = dict(options.payload.get(PAYLOAD_KEY, {}))
        missing = [name for name in self.required if name not in labels]
        if missing:
            raise MalformedPayloadError(
                *(f"task.payload.{PAYLOAD_KEY}: the label {name!r} is required" for name in missing)
            )
        return LabelsTask(options.context, labels)


class Provider(PluginProvider):
    """What the worker registers under ``{{ cookiecutter.plugin_name }}``."""

    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {
                "required": {"type": "array", "items": {"type": "string", "pattern": LABEL_NAME}}
            },
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        config: dict[str, Any] = options.config or {}
        return LabelsPlugin(list(config.get("required", [])))


def main() -> None:
    """Serve the provider to the worker that launched this process."""
    from plugwire.grpc.tasks import serve  # needs plugwire[grpc]

    serve(Provider())
