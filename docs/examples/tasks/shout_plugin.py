"""An out-of-process task plugin: ``python shout_plugin.py`` is launched by the host.

It declares a ``shout`` payload property (a string). In ``build_sandbox`` it exports
``SHOUT=<the string in capitals>`` to the task; in every stage it writes a line to the
task log; in ``stopped`` it fails the task when the task did not succeed and its
config says ``strict``. Run it through the host:

    plugwire task run payload-shout.json -c worker.json
"""

from __future__ import annotations

from plugwire.core.tasks import (
    ExceptionReason,
    JsonSchema,
    Plugin,
    PluginOptions,
    PluginProvider,
    ResultSet,
    Sandbox,
    SandboxBuilder,
    TaskContext,
    TaskPlugin,
    TaskPluginOptions,
    object_schema,
)
from plugwire.grpc.tasks import serve


class ShoutTask(TaskPlugin):
    def __init__(self, context: TaskContext, text: str, strict: bool) -> None:
        self.context = context
        self.text = text
        self.strict = strict

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        builder.set_environment_variable("SHOUT", self.text.upper())
        self.context.log(f"shout: exported SHOUT={self.text.upper()!r}")

    async def started(self, sandbox: Sandbox) -> None:
        self.context.log("shout: the task started")

    async def stopped(self, result: ResultSet) -> bool:
        self.context.log(f"shout: the task stopped with exit code {result.exit_code}")
        return result.success or not self.strict

    async def exception(self, reason: ExceptionReason) -> None:
        print(f"shout: exception {reason}")  # goes to stderr: stdout is reserved


class ShoutPlugin(Plugin):
    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def payload_schema(self) -> JsonSchema:
        return object_schema({"shout": {"type": "string", "minLength": 1}})

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        return ShoutTask(options.context, options.payload.get("shout", "hello"), self.strict)


class ShoutProvider(PluginProvider):
    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {"strict": {"type": "boolean"}},
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return ShoutPlugin(bool((options.config or {}).get("strict", False)))


if __name__ == "__main__":
    serve(ShoutProvider())
