"""Ephemeral resources: values that exist only during one Terraform run.

:meth:`EphemeralResource.open` returns the result (never stored); it may set
``ctx.private`` (handed back to :meth:`~EphemeralResource.renew` and
:meth:`~EphemeralResource.close`) and ``ctx.renew_at``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .context import Context
from .diagnostics import TerraformError
from .schema import Schema

__all__ = ["EphemeralResource"]


class EphemeralResource:
    """Base class of an ephemeral resource type: ``type_name``, ``schema``, :meth:`open`."""

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()

    async def open(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        raise TerraformError(f"{self.type_name} cannot be opened", "open is not implemented")

    async def renew(self, ctx: Context) -> None:
        """Extend the lease named by ``ctx.private``; may set ``ctx.renew_at`` again."""

    async def close(self, ctx: Context) -> None:
        """Release what ``ctx.private`` names."""

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """Extra configuration checks beyond the schema's validators."""
