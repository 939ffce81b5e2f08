"""The ``{{ cookiecutter.provider_name }}`` Terraform provider.

- provider configuration: ``greeting`` (optional; default ``{{ cookiecutter.default_greeting }}``): the
  greeting of every greeting and message that does not set its own;
- resource ``{{ cookiecutter.provider_name }}_greeting``: ``name`` (required; changing it replaces the
  greeting), ``greeting`` (optional; the provider's when not set), ``text`` (computed,
  ``"<greeting>, <name>!"``, known at plan time) and ``id`` (computed: known after apply,
  kept across in-place updates), ``signature_wo`` (optional, *write-only*: sent to the
  provider with the configuration, never stored in the plan or state); its *identity*
  is ``{name}``, so an ``import`` block can import it with ``identity = { name = ... }``;
- data source ``{{ cookiecutter.provider_name }}_message``: the ``text`` for a ``name``
  (and an optional ``greeting``);
- function ``provider::{{ cookiecutter.provider_name }}::shout(text)``: ``text``
  upper-cased, with ``!``;
- action ``{{ cookiecutter.provider_name }}_announce``: announces a greeting for
  ``name`` ``times`` times, one progress message each (``terraform apply
  -invoke=action.{{ cookiecutter.provider_name }}_announce.<name>``, or a resource's
  ``lifecycle { action_trigger { ... } }``).

Nothing lives outside Terraform's state: replace the bodies of ``create``, ``read``,
``update`` and ``delete`` with calls to your API, and keep its client on the provider
(set it up in :meth:`GreeterProvider.configure`).
"""

from __future__ import annotations

import uuid
from typing import Any

from plugwire.grpc.terraform import (
    Action,
    ActionContext,
    Attribute,
    Between,
    Context,
    DataSource,
    Function,
    IdentityAttribute,
    IdentitySchema,
    LengthBetween,
    Parameter,
    Provider,
    RequiresReplace,
    Resource,
    Schema,
    UseStateForUnknown,
    cty,
)

__all__ = [
    "Announce",
    "GreeterProvider",
    "Greeting",
    "Message",
    "Shout",
    "provider",
]
DEFAULT_GREETING = "{{ cookiecutter.default_greeting }}"


def greet(greeting: str, name: str) -> str:
    return f"{greeting}, {name}!"


class GreeterProvider(Provider):
    """The provider: its own configuration block, and what it offers."""

    greeting: Any = DEFAULT_GREETING

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        # A real provider builds its API client here (from credentials in `config`).
        # The value may be unknown while planning (it depends on another resource).
        if config["greeting"] is not None:
            self.greeting = config["greeting"]


def default_greeting(ctx: Context) -> Any:
    """The configured provider's greeting (unknown while its configuration is)."""
    assert isinstance(ctx.provider, GreeterProvider)
    return ctx.provider.greeting


class Greeting(Resource):
    """``{{ cookiecutter.provider_name }}_greeting``."""

    type_name = "{{ cookiecutter.provider_name }}_greeting"
    schema = Schema(
        description="A greeting for someone, kept in Terraform's state.",
        attributes={
            "id": Attribute(
                cty.String,
                computed=True,
                plan_modifiers=[UseStateForUnknown()],
                description="Identifier, assigned on create.",
            ),
            "name": Attribute(
                cty.String,
                required=True,
                plan_modifiers=[RequiresReplace()],
                validators=[LengthBetween(1, 64)],
                description="Who to greet; changing it replaces the greeting.",
            ),
            "greeting": Attribute(
                cty.String,
                optional=True,
                computed=True,
                validators=[LengthBetween(1, 40)],
                description="The greeting; the provider's `greeting` when not set.",
            ),
            "text": Attribute(cty.String, computed=True, description="`<greeting>, <name>!`"),
            "signature_wo": Attribute(
                cty.String,
                optional=True,
                sensitive=True,
                write_only=True,
                validators=[LengthBetween(8, 128)],
                description="Signed with this on create and update (8 to 128 characters); "
                "write-only: never stored in the plan or state.",
            ),
        },
    )
    # The identity names the remote object for good: Terraform stores it next to the
    # state, and `import { to = ...; identity = { name = "..." } }` imports by it.
    identity_schema = IdentitySchema(
        {"name": IdentityAttribute(cty.String, required_for_import=True, description="Name.")}
    )

    async def modify_plan(
        self, prior: dict[str, Any] | None, config: dict[str, Any], plan: dict[str, Any],
        ctx: Context,
    ) -> dict[str, Any]:  # fmt: skip
        if config["greeting"] is None:
            plan["greeting"] = default_greeting(ctx)
        greeting, name = plan["greeting"], plan["name"]
        if isinstance(greeting, str) and isinstance(name, str):
            plan["text"] = greet(greeting, name)  # known before apply
        else:
            plan["text"] = cty.UNKNOWN
        return plan

    async def create(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
        # Write-only values are only in ctx.config (ctx.config["signature_wo"]: a real
        # provider sends it to its API); the framework nulls them in the state returned.
        # The identity ({name}) is taken from the state returned (Resource.identity).
        return {**plan, "id": uuid.uuid4().hex, "text": greet(plan["greeting"], plan["name"])}

    async def read(self, state: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
        # A real provider fetches the object; None when it is gone.
        if state.get("text") is None:  # just imported: fill in what the API would return
            greeting = state.get("greeting") or default_greeting(ctx)
            return {**state, "greeting": greeting, "text": greet(greeting, state["name"])}
        return state

    async def update(
        self, prior: dict[str, Any], plan: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        return {**plan, "id": prior["id"], "text": greet(plan["greeting"], plan["name"])}

    async def import_by_identity(self, identity: dict[str, Any], ctx: Context) -> dict[str, Any]:
        # `import { identity = { name = "..." } }`: a real provider looks the object up;
        # Terraform then calls read on what is returned here.
        return {"id": uuid.uuid4().hex, "name": identity["name"]}

    async def delete(self, state: dict[str, Any], ctx: Context) -> None:
        pass  # a real provider deletes the object


class Message(DataSource):
    """``{{ cookiecutter.provider_name }}_message``."""

    type_name = "{{ cookiecutter.provider_name }}_message"
    schema = Schema(
        description="The text a greeting for `name` would have.",
        attributes={
            "name": Attribute(cty.String, required=True, validators=[LengthBetween(1, 64)]),
            "greeting": Attribute(cty.String, optional=True),
            "text": Attribute(cty.String, computed=True),
        },
    )

    async def read(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        greeting = config["greeting"] or default_greeting(ctx)
        return {**config, "text": greet(greeting, config["name"])}


class Shout(Function):
    """``provider::{{ cookiecutter.provider_name }}::shout(text)``."""

    name = "shout"
    parameters = (Parameter("text", cty.String),)
    return_type = cty.String
    summary = "Upper-case a text and add an exclamation mark"

    async def run(self, text: str) -> str:
        return text.upper() + "!"


class Announce(Action):
    """``{{ cookiecutter.provider_name }}_announce``: runs outside the resource lifecycle."""

    type_name = "{{ cookiecutter.provider_name }}_announce"
    schema = Schema(
        description="Announce a greeting, reporting progress.",
        attributes={
            "name": Attribute(cty.String, required=True, validators=[LengthBetween(1, 64)]),
            "times": Attribute(cty.Number, optional=True, validators=[Between(1, 10)]),
        },
    )

    async def invoke(self, config: dict[str, Any], ctx: ActionContext) -> None:
        times = int(config["times"] or 1)
        for i in range(1, times + 1):
            ctx.progress(f"{greet(default_greeting(ctx), config['name'])} ({i}/{times})")


def provider() -> GreeterProvider:
    return GreeterProvider(
        "{{ cookiecutter.provider_name }}",
        schema=Schema(
            description="{{ cookiecutter.description }}",
            attributes={
                "greeting": Attribute(
                    cty.String,
                    optional=True,
                    validators=[LengthBetween(1, 40)],
                    description=f"The default greeting (`{DEFAULT_GREETING}` when not set).",
                ),
            },
        ),
        resources=[Greeting()],
        data_sources=[Message()],
        functions=[Shout()],
        actions=[Announce()],
        version="{{ cookiecutter.version }}",
    )
