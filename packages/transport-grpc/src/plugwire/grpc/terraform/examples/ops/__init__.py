"""The example provider ``ops``: an action and a list resource (``terraform query``).

- resource ``ops_server``: ``name`` (required, replaces), ``size`` (optional number),
  ``id`` (computed, ``server-<name>``); its identity is ``{name}``.
- list resource ``ops_server``: a ``config { prefix = "web"; count = 5 }`` lists the
  servers ``web-0`` ... ``web-4`` (the "fleet" is made up from the config), each with
  its identity, a display name and, with ``include_resource = true``, the full object.
- action ``ops_reboot``: ``config { server = "web-0"; steps = 3; delay = 0.1; fail =
  false }`` sends one progress message per step, then succeeds (or fails with a
  diagnostic naming ``server`` when ``fail`` is set). Run it with ``terraform apply
  -invoke=action.ops_reboot.<name>`` or from a resource's ``lifecycle {
  action_trigger { ... } }``.
- provider ``endpoint`` (optional, otherwise unused): while it is unknown (configured
  from a value known only after apply), ``ops_reboot``'s plan defers (``ctx.defer()``;
  ``plan -allow-deferral`` on a Terraform that allows it, else an error diagnostic).

``OPS_LOG`` (a file path) makes the provider append what it did, one line each:
``invoke <server> <step>``, ``invoked <server>``, and ``listed <prefix> <n>`` when a
listing stops (n = results handed out). The tests read it to see what really ran on
the provider side.

Run as ``python -m plugwire.grpc.terraform.examples.ops`` (``OPS_PROTOCOL=5`` serves
protocol 5 only).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from plugwire.grpc.terraform import (
    Action,
    ActionContext,
    Attribute,
    Between,
    Context,
    DeferredReason,
    IdentityAttribute,
    IdentitySchema,
    ListContext,
    ListResource,
    ListResult,
    Provider,
    RequiresReplace,
    Resource,
    Schema,
    TerraformError,
    UseStateForUnknown,
    cty,
)

__all__ = ["OpsProvider", "Reboot", "Server", "ServerList", "main", "provider"]

NAME = cty.AttributePath().attr("name")


def _log(line: str) -> None:
    path = os.environ.get("OPS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


class Server(Resource):
    """``ops_server``."""

    type_name = "ops_server"
    schema = Schema(
        description="A server (only in Terraform's state).",
        attributes={
            "id": Attribute(cty.String, computed=True, plan_modifiers=[UseStateForUnknown()]),
            "name": Attribute(cty.String, required=True, plan_modifiers=[RequiresReplace()]),
            "size": Attribute(cty.Number, optional=True),
        },
    )

    async def create(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {**plan, "id": f"server-{plan['name']}"}

    async def update(
        self, prior: dict[str, Any], plan: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        return {**plan, "id": prior["id"]}


class ServerList(ListResource):
    """``list "ops_server"``: the servers ``<prefix>-0`` ... ``<prefix>-<count - 1>``."""

    type_name = "ops_server"
    schema = Schema(
        attributes={
            "prefix": Attribute(cty.String, required=True, description="Name prefix."),
            "count": Attribute(
                cty.Number, optional=True, validators=[Between(0, 10_000)], description="How many."
            ),
        }
    )
    identity = IdentitySchema(
        {"name": IdentityAttribute(cty.String, required_for_import=True, description="Name.")}
    )

    async def list(self, config: dict[str, Any], ctx: ListContext) -> AsyncIterator[ListResult]:
        prefix, count = config["prefix"], int(config.get("count") or 0)
        if prefix.startswith("-"):
            raise TerraformError("Invalid prefix", "a prefix cannot start with '-'",
                                 cty.AttributePath().attr("prefix"))  # fmt: skip
        if count == 0:
            ctx.diagnostics.warning("Empty fleet", f"no servers named {prefix}-*")
        sent = 0
        try:
            for i in range(count):
                name = f"{prefix}-{i}"
                obj = {"id": f"server-{name}", "name": name, "size": i}
                sent += 1
                yield ListResult(
                    identity={"name": name},
                    display_name=f"server {name}",
                    resource=obj if ctx.include_resource else None,
                )
                await asyncio.sleep(0)
        finally:
            _log(f"listed {prefix} {sent}")


class Reboot(Action):
    """``action "ops_reboot"``: reboot a server in ``steps`` steps of ``delay`` seconds."""

    type_name = "ops_reboot"
    schema = Schema(
        description="Reboot a server, reporting progress.",
        attributes={
            "server": Attribute(cty.String, required=True),
            "steps": Attribute(cty.Number, optional=True, validators=[Between(1, 1000)]),
            "delay": Attribute(cty.Number, optional=True),
            "fail": Attribute(cty.Bool, optional=True),
        },
    )

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        server = config.get("server")
        if isinstance(server, str) and not server:
            ctx.diagnostics.error("Invalid server", "server must not be empty",
                                  cty.AttributePath().attr("server"))  # fmt: skip

    async def plan(self, config: dict[str, Any], ctx: Context) -> None:
        if isinstance(getattr(ctx.provider, "endpoint", None), cty.Unknown):
            ctx.defer(DeferredReason.PROVIDER_CONFIG_UNKNOWN)  # plan it once it is known
            return
        if config.get("server") == "localhost":
            ctx.diagnostics.warning("Rebooting localhost", "this reboots the machine running it",
                                    cty.AttributePath().attr("server"))  # fmt: skip

    async def invoke(self, config: dict[str, Any], ctx: ActionContext) -> None:
        server = config["server"]
        steps = int(config.get("steps") or 3)
        delay = float(config.get("delay") or 0)
        for step in range(1, steps + 1):
            if delay:
                await asyncio.sleep(delay)
            _log(f"invoke {server} {step}")
            ctx.progress(f"rebooting {server}: step {step}/{steps}")
        if config.get("fail"):
            raise TerraformError("Reboot failed", f"{server} did not come back",
                                 cty.AttributePath().attr("server"))  # fmt: skip
        _log(f"invoked {server}")


class OpsProvider(Provider):
    """The provider: keeps its ``endpoint`` (a :class:`cty.Unknown` while unknown)."""

    endpoint: Any = None

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        self.endpoint = config.get("endpoint")


def provider() -> Provider:
    return OpsProvider(
        "ops",
        resources=[Server()],
        list_resources=[ServerList()],
        actions=[Reboot()],
        schema=Schema(
            description="plugwire's action and list resource example.",
            attributes={
                "endpoint": Attribute(
                    cty.String, optional=True, description="Unused; actions defer while unknown."
                )
            },
        ),
        version="0.1.0",
    )


def main() -> NoReturn:
    """Serve the provider (``--debug`` for debug mode); ``OPS_PROTOCOL=5`` (or 6)
    offers Terraform only that protocol version."""
    from plugwire.grpc.terraform import serve, serve_async

    only = os.environ.get("OPS_PROTOCOL", "")
    if only in ("5", "6") and "--debug" not in sys.argv[1:]:
        sys.exit(asyncio.run(serve_async(provider(), protocol_versions=(int(only),))))
    serve(provider(), address="registry.terraform.io/plugwire/ops")
