"""List resources: :class:`ListResource`, what ``terraform query`` searches.

A ``list "<type>" "<name>" { provider = ...; include_resource = true; limit = 10;
config { ... } }`` block in a ``.tfquery.hcl`` file calls ``ListResource`` for the
managed resource type ``<type>``: :meth:`ListResource.list` is an async generator
yielding one :class:`ListResult` per object found - its identity (Terraform imports
by it), a display name, and, when ``ctx.include_resource`` is set, the full resource
object in the managed resource's schema. Each result is streamed to Terraform as it
is yielded; after ``ctx.limit`` results the generator is closed (stop paging).

Terraform needs the resource type's identity schema for the results: by default the
managed :class:`Resource` of the same type name's ``identity_schema``; a list resource
can declare one as ``identity`` (an :class:`IdentitySchema`) when the resource has
none, and the provider then advertises it in ``GetResourceIdentitySchemas`` for that
type. The managed resource must exist (``include_resource`` objects use its schema).

Warnings added to ``ctx.diagnostics`` travel with the next result; an error (or a
raised :class:`~plugwire.grpc.terraform.TerraformError`) ends the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import attrs

from .context import Context
from .diagnostics import TerraformError
from .schema import IdentitySchema, Schema

__all__ = ["ListContext", "ListResource", "ListResult"]


@attrs.frozen
class ListResult:
    """One object found: ``identity`` (a dict in the identity schema's shape),
    ``display_name``, and ``resource`` (the full object; sent only when
    ``ctx.include_resource`` is set)."""

    identity: dict[str, Any]
    display_name: str = ""
    resource: dict[str, Any] | None = None


@attrs.define
class ListContext(Context):
    """The :class:`~plugwire.grpc.terraform.Context` of :meth:`ListResource.list`:
    ``include_resource`` (Terraform wants full objects) and ``limit`` (the most
    results Terraform reads; 0 = no limit)."""

    include_resource: bool = False
    limit: int = 0


class ListResource:
    """Base class of a list resource: set ``type_name`` (a managed resource type),
    ``schema`` (the ``config`` block of ``list`` blocks) and, when the managed resource
    has no ``identity_schema``, ``identity``; override :meth:`list`."""

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()
    identity: ClassVar[IdentitySchema | None] = None

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """``ValidateListResourceConfig``: checks beyond the schema's validators."""

    async def list(self, config: dict[str, Any], ctx: ListContext) -> AsyncIterator[ListResult]:
        """Yield the objects found, one :class:`ListResult` each."""
        raise TerraformError(f"{self.type_name} cannot be listed", "list is not implemented")
        yield  # pragma: no cover - makes this an async generator
