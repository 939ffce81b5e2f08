"""Run by test_terraform_stream_defer_stop: a provider for deferral and StopProvider.

- provider ``endpoint``: while unknown, and Terraform allows deferral, ``configure``
  defers everything (``ctx.defer()``), so ``PlanAction`` answers deferred for every
  action (provider-wide deferral);
- action ``slow_ping``: nothing to plan, nothing to do;
- list resource ``slow_item`` (managed resource of the same name, identity ``{name}``):
  ``config { count = n; pause = s }`` yields ``item-0`` at once, then sleeps ``pause``
  seconds before each further result.

``SLOW_LOG`` (a file path): one line per event - ``yield <name>``, ``cancelled`` when
the generator saw the cancellation, ``finally <n>`` when it ended (n = results yielded).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from plugwire.grpc.terraform import (
    Action,
    ActionContext,
    Attribute,
    Context,
    IdentityAttribute,
    IdentitySchema,
    ListContext,
    ListResource,
    ListResult,
    Provider,
    Resource,
    Schema,
    cty,
    serve,
)


def _log(line: str) -> None:
    path = os.environ.get("SLOW_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


IDENTITY = IdentitySchema({"name": IdentityAttribute(cty.String, required_for_import=True)})


class Item(Resource):
    type_name = "slow_item"
    schema = Schema(attributes={"name": Attribute(cty.String, required=True)})
    identity_schema = IDENTITY


class Items(ListResource):
    type_name = "slow_item"
    schema = Schema(
        attributes={
            "count": Attribute(cty.Number, optional=True),
            "pause": Attribute(cty.Number, optional=True),
        }
    )

    async def list(self, config: dict[str, Any], ctx: ListContext) -> AsyncIterator[ListResult]:
        count, pause = int(config.get("count") or 0), float(config.get("pause") or 0)
        sent = 0
        try:
            for i in range(count):
                if i:
                    await asyncio.sleep(pause)
                _log(f"yield item-{i}")
                sent += 1
                yield ListResult(identity={"name": f"item-{i}"}, display_name=f"item-{i}")
        except asyncio.CancelledError:
            _log("cancelled")
            raise
        finally:
            _log(f"finally {sent}")


class Ping(Action):
    type_name = "slow_ping"
    schema = Schema(attributes={"target": Attribute(cty.String, optional=True)})

    async def invoke(self, config: dict[str, Any], ctx: ActionContext) -> None:
        ctx.progress("pong")


class SlowProvider(Provider):
    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        unknown = isinstance(config.get("endpoint"), cty.Unknown)
        if unknown and ctx.client_capabilities.deferral_allowed:
            ctx.defer()


def provider() -> Provider:
    return SlowProvider(
        "slow",
        resources=[Item()],
        list_resources=[Items()],
        actions=[Ping()],
        schema=Schema(attributes={"endpoint": Attribute(cty.String, optional=True)}),
    )


if __name__ == "__main__":
    serve(provider())
