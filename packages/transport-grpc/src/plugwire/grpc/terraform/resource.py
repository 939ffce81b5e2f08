"""Managed resources: :class:`Resource`, one class per resource type.

Values are plain Python (see :mod:`plugwire.grpc.terraform.cty`): objects are dicts
keyed by attribute name, ``None`` is null, :data:`~plugwire.grpc.terraform.cty.UNKNOWN`
is "known after apply". A state returned by a method may leave out attributes:
they are null.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from .context import Context
from .diagnostics import TerraformError
from .schema import IdentitySchema, Schema

__all__ = ["MoveSource", "Resource"]

State = dict[str, Any]


@attrs.frozen
class MoveSource:
    """Where a ``moved`` block moves a resource from (``MoveResourceState``).

    ``state`` is the source's raw JSON state, parsed (its schema is the source's).
    """

    provider_address: str
    type_name: str
    schema_version: int
    state: dict[str, Any] | None
    private: bytes = b""
    identity: dict[str, Any] | None = None
    identity_schema_version: int = 0


class Resource:
    """Base class of a managed resource type.

    Set ``type_name`` (e.g. ``"example_thing"``) and ``schema``; override the async
    methods. Each gets the values and a :class:`Context` (diagnostics, provider,
    private state). :meth:`create`/:meth:`update` return the new state, which must be
    wholly known; :meth:`read` returns the current state or None when the object is
    gone; :meth:`import_state` returns a (partial) state Terraform then reads.

    ``identity_schema`` (optional) gives the resource an identity: after create, read,
    update and import the framework sends ``ctx.identity`` if the method set it, else
    :meth:`identity` of the new state. Configuration can then import by identity
    (:meth:`import_by_identity`).
    """

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()
    identity_schema: ClassVar[IdentitySchema | None] = None

    async def create(self, plan: State, ctx: Context) -> State:
        raise TerraformError(f"{self.type_name} cannot be created", "create is not implemented")

    async def read(self, state: State, ctx: Context) -> State | None:
        """Refresh: the default keeps the state as it is."""
        return state

    async def update(self, prior: State, plan: State, ctx: Context) -> State:
        raise TerraformError(
            f"{self.type_name} cannot be updated in place", "update is not implemented"
        )

    async def delete(self, state: State, ctx: Context) -> None:
        """Destroy: the default just forgets the object."""

    async def import_state(self, id: str, ctx: Context) -> State:
        """``terraform import``/``import`` blocks: a state from an import id."""
        raise TerraformError(
            "Resource import not implemented",
            f"{self.type_name} does not support import",
        )

    async def import_by_identity(self, identity: dict[str, Any], ctx: Context) -> State:
        """An ``import`` block with ``identity = {...}``: a (partial) state Terraform then
        reads. ``ctx.identity`` is the identity given (change it to complete it)."""
        raise TerraformError(
            "Resource import by identity not implemented",
            f"{self.type_name} does not support import by identity",
        )

    def identity(self, state: State) -> dict[str, Any] | None:
        """The identity of a (wholly known) state when a method left ``ctx.identity``
        unset: by default the state's attributes of the same names."""
        if self.identity_schema is None:
            return None
        return {name: state.get(name) for name in self.identity_schema.attributes}

    async def upgrade_identity(
        self, version: int, identity: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """Identity data stored by identity schema ``version`` (older than
        ``identity_schema.version``), parsed from JSON, in the current identity's shape."""
        current = self.identity_schema.version if self.identity_schema else 0
        raise TerraformError(
            "Unable to upgrade resource identity",
            f"{self.type_name} has no identity upgrade from version {version} to {current}",
        )

    async def generate_config(self, state: State, ctx: Context) -> State | None:
        """``GenerateResourceConfig`` (``plan -generate-config-out``): the configuration to
        write for an imported ``state``. None (the default) lets the framework derive it
        like terraform-plugin-framework: computed-only, deprecated and write-only
        attributes, a computed ``id`` and empty optional strings are left out."""
        return None

    async def upgrade_state(self, version: int, state: dict[str, Any], ctx: Context) -> State:
        """A state stored by schema ``version`` (older than ``schema.version``), as JSON
        parsed into dicts/lists/str/Decimal, in the current schema's shape."""
        raise TerraformError(
            "Unable to upgrade resource state",
            f"{self.type_name} has no upgrade from schema version {version} "
            f"to {self.schema.version}",
        )

    async def move_state(self, source: MoveSource, ctx: Context) -> State | None:
        """A ``moved`` block from another resource type: the state in this type's shape,
        or None when the source is not supported (Terraform then shows an error)."""
        return None

    async def validate(self, config: State, ctx: Context) -> None:
        """Extra configuration checks beyond the schema's validators."""

    async def modify_plan(
        self, prior: State | None, config: State, plan: State, ctx: Context
    ) -> State:
        """The last planning step: the plan after defaults and plan modifiers."""
        return plan
