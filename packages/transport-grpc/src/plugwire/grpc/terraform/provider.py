"""The :class:`Provider`: its own schema and configuration, and what it offers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plugwire.core.errors import ConfigError

from .context import Context
from .data_source import DataSource
from .ephemeral import EphemeralResource
from .function import Function
from .resource import Resource
from .schema import Schema
from .state_store import StateStore

__all__ = ["Provider"]


def _registry(kind: str, items: Iterable[Any], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name = getattr(item, key)
        if not name:
            raise ConfigError(f"{kind} {type(item).__name__} has no {key}", step="provider")
        if name in out:
            raise ConfigError(f"two {kind}s named {name!r}", step="provider")
        out[name] = item
    return out


class Provider:
    """A Terraform provider: its name, schema, and registries.

    ``name``: the provider's type name (``example`` for ``example_thing``); every
    resource, data source and ephemeral resource type name must start with
    ``name + "_"``. ``resources``, ``data_sources``, ``ephemeral_resources`` and
    ``functions`` are instances; so are ``state_stores`` (:class:`StateStore`,
    protocol 6 only). Subclass to override :meth:`configure` (keep API
    clients on ``self``) and :meth:`validate`.
    """

    def __init__(
        self,
        name: str,
        *,
        schema: Schema | None = None,
        resources: Iterable[Resource] = (),
        data_sources: Iterable[DataSource] = (),
        ephemeral_resources: Iterable[EphemeralResource] = (),
        functions: Iterable[Function] = (),
        provider_meta: Schema | None = None,
        version: str = "",
        state_stores: Iterable[StateStore] = (),
    ) -> None:
        self.name = name
        self.schema = schema if schema is not None else Schema()
        self.provider_meta = provider_meta
        self.version = version
        self.resources: dict[str, Resource] = _registry("resource", resources, "type_name")
        self.data_sources: dict[str, DataSource] = _registry(
            "data source", data_sources, "type_name"
        )
        self.ephemeral_resources: dict[str, EphemeralResource] = _registry(
            "ephemeral resource", ephemeral_resources, "type_name"
        )
        self.functions: dict[str, Function] = _registry("function", functions, "name")
        for registry in (self.resources, self.data_sources, self.ephemeral_resources):
            for type_name in registry:
                if not type_name.startswith(f"{name}_"):
                    raise ConfigError(
                        f"type name {type_name!r} does not start with the provider's name",
                        step="provider",
                        expected=f"{name}_...",
                        seen=type_name,
                    )
        self.state_stores: dict[str, StateStore] = _registry(
            "state store", state_stores, "type_name"
        )
        for type_name in self.state_stores:
            if not type_name.startswith(f"{name}_"):
                raise ConfigError(
                    f"state store type name {type_name!r} does not start with the provider's name",
                    step="provider",
                    expected=f"{name}_...",
                    seen=type_name,
                )
        self.configured = False

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        """``ConfigureProvider``: set up clients from the provider block's ``config``."""

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """Extra provider configuration checks beyond the schema's validators."""

    def __repr__(self) -> str:
        return (
            f"Provider({self.name!r}, resources={sorted(self.resources)}, "
            f"data_sources={sorted(self.data_sources)}, functions={sorted(self.functions)})"
        )
