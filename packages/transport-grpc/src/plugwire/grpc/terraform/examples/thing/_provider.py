"""The example provider's classes (see the package docstring)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import os
from decimal import Decimal
from typing import Any

from plugwire.grpc.terraform import (
    Attribute,
    Context,
    DataSource,
    DeferredReason,
    EphemeralResource,
    Function,
    IdentityAttribute,
    IdentitySchema,
    LengthBetween,
    Parameter,
    Provider,
    RequiresReplace,
    Resource,
    Schema,
    TerraformError,
    UseStateForUnknown,
    cty,
)

__all__ = ["Echo", "ExampleProvider", "Thing", "Token", "Upper", "provider"]


ID_PREFIX = "thing-"


def _delay() -> float:
    try:
        return float(os.environ.get("EXAMPLE_APPLY_DELAY", "0"))
    except ValueError:
        return 0.0


class Thing(Resource):
    """``example_thing``."""

    type_name = "example_thing"
    schema = Schema(
        version=1,
        description="A thing that lives only in Terraform's state.",
        attributes={
            "id": Attribute(
                cty.String,
                computed=True,
                plan_modifiers=[UseStateForUnknown()],
                description="Identifier, `thing-<name>`.",
            ),
            "name": Attribute(
                cty.String,
                required=True,
                plan_modifiers=[RequiresReplace()],
                validators=[LengthBetween(1, 64)],
                description="Name; changing it replaces the thing.",
            ),
            "size": Attribute(cty.Number, optional=True, default=1, description="Size."),
            "tags": Attribute(cty.Map(cty.String), optional=True, description="Tags."),
            "secret": Attribute(cty.String, optional=True, sensitive=True, description="Secret."),
            "created": Attribute(
                cty.String, computed=True, description="Creation time, known after apply."
            ),
            "password_wo": Attribute(
                cty.String,
                optional=True,
                sensitive=True,
                write_only=True,
                description="Write-only password (8 characters or more), never stored.",
            ),
            "label": Attribute(
                cty.String,
                optional=True,
                deprecation="label is deprecated: use tags instead.",
                description="Deprecated label.",
            ),
        },
    )
    identity_schema = IdentitySchema(
        {"name": IdentityAttribute(cty.String, required_for_import=True, description="Name.")}
    )

    async def create(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if delay := _delay():
            await asyncio.sleep(delay)
        _check_password(ctx)
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {**plan, "id": ID_PREFIX + plan["name"], "created": now}

    async def read(self, state: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
        if state.get("name") is None:  # just imported: only the id is known
            name = str(state["id"]).removeprefix(ID_PREFIX)
            return {**state, "name": name, "size": 1, "tags": None, "created": "imported"}
        return state

    async def update(
        self, prior: dict[str, Any], plan: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        if delay := _delay():
            await asyncio.sleep(delay)
        _check_password(ctx)
        return {**plan, "id": prior["id"], "created": prior["created"]}

    async def import_state(self, id: str, ctx: Context) -> dict[str, Any]:
        if not id.startswith(ID_PREFIX):
            raise TerraformError(
                "Invalid import id",
                f'expected "{ID_PREFIX}<name>", got "{id}"',
                cty.AttributePath().attr("id"),
            )
        return {"id": id}  # Terraform reads it next

    async def import_by_identity(self, identity: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"id": ID_PREFIX + identity["name"]}  # Terraform reads it next

    async def upgrade_state(self, version: int, state: dict[str, Any], ctx: Context) -> Any:
        if version != 0:
            return await super().upgrade_state(version, state, ctx)
        size = state.get("size")
        try:
            number = Decimal(size) if isinstance(size, str) else size
        except ArithmeticError:
            raise TerraformError("Cannot upgrade size", f"size {size!r} is not a number") from None
        return {**state, "size": number}


def _check_password(ctx: Context) -> None:
    password = (ctx.config or {}).get("password_wo")
    if password is not None and len(password) < 8:
        raise TerraformError(
            "Password too short",
            f"password_wo must have 8 characters or more, got {len(password)}",
            cty.AttributePath().attr("password_wo"),
        )


class Echo(DataSource):
    """``example_echo``: ``output`` is ``input``."""

    type_name = "example_echo"
    schema = Schema(
        description="Echoes input as output.",
        attributes={
            "input": Attribute(cty.String, required=True),
            "output": Attribute(cty.String, computed=True),
        },
    )

    async def read(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"input": config["input"], "output": config["input"]}


class Token(EphemeralResource):
    """``example_token``: a token derived from ``name``, renewed never, closed quietly."""

    type_name = "example_token"
    schema = Schema(
        attributes={
            "name": Attribute(cty.String, required=True),
            "token": Attribute(cty.String, computed=True, sensitive=True),
        }
    )

    async def open(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        digest = hashlib.sha256(config["name"].encode()).hexdigest()[:16]
        ctx.private = config["name"].encode()
        return {"name": config["name"], "token": f"tok-{digest}"}


class Upper(Function):
    """``provider::example::upper(s)``."""

    name = "upper"
    parameters = (Parameter("s", cty.String),)
    return_type = cty.String
    summary = "Upper-case a string"

    async def run(self, s: str) -> str:
        return s.upper()


class ExampleProvider(Provider):
    """The provider: defers everything while its ``endpoint`` is unknown."""

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        unknown = isinstance(config.get("endpoint"), cty.Unknown)
        if unknown and ctx.client_capabilities.deferral_allowed:
            ctx.defer(DeferredReason.PROVIDER_CONFIG_UNKNOWN)


def provider() -> Provider:
    return ExampleProvider(
        "example",
        resources=[Thing()],
        data_sources=[Echo()],
        ephemeral_resources=[Token()],
        schema=Schema(
            description="plugwire's comparison provider.",
            attributes={
                "endpoint": Attribute(cty.String, optional=True, description="Unused endpoint.")
            },
        ),
        functions=[Upper()],
        version="0.1.0",
    )
