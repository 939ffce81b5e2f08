"""Data sources: :class:`DataSource`, one class per data source type."""

from __future__ import annotations

from typing import Any, ClassVar

from .context import Context
from .diagnostics import TerraformError
from .schema import Schema

__all__ = ["DataSource"]


class DataSource:
    """Base class of a data source: set ``type_name`` and ``schema``, override :meth:`read`.

    :meth:`read` gets the configuration (computed attributes null) and returns the
    state: the configuration with computed attributes filled in.
    """

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()

    async def read(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        raise TerraformError(f"{self.type_name} cannot be read", "read is not implemented")

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """Extra configuration checks beyond the schema's validators."""
