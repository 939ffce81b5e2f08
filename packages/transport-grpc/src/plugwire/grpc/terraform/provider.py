"""The :class:`Provider`: its own schema and configuration, and what it offers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plugwire.core.errors import ConfigError

from .context import Context
from .data_source import DataSource
from .ephemeral import EphemeralResource
from .function import Function
from .resource import Resource
from .schema import Schema

if TYPE_CHECKING:  # loaded by a provider that has them, not by every provider
    from .action import Action
    from .list_resource import ListResource
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
    ``functions`` are instances; so are ``actions`` (:class:`Action`),
    ``list_resources`` (:class:`ListResource`, for ``terraform query``) and
    ``state_stores`` (:class:`StateStore`, protocol 6 only). Subclass to override
    :meth:`configure` (keep API clients on ``self``) and :meth:`validate`.
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
        actions: Iterable[Action] = (),
        list_resources: Iterable[ListResource] = (),
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
        self.actions: dict[str, Action] = _registry("action", actions, "type_name")
        self.list_resources: dict[str, ListResource] = _registry(
            "list resource", list_resources, "type_name"
        )
        self.state_stores: dict[str, StateStore] = _registry(
            "state store", state_stores, "type_name"
        )
        for registry in (
            self.resources,
            self.data_sources,
            self.ephemeral_resources,
            self.actions,
            self.list_resources,
            self.state_stores,
        ):
            for type_name in registry:
                if not type_name.startswith(f"{name}_"):
                    raise ConfigError(
                        f"type name {type_name!r} does not start with the provider's name",
                        step="provider",
                        expected=f"{name}_...",
                        seen=type_name,
                    )
        for type_name, listed in self.list_resources.items():
            managed = self.resources.get(type_name)
            identity = listed.identity or (managed.identity_schema if managed else None)
            if managed is None or identity is None:
                raise ConfigError(
                    f"list resource {type_name!r} needs a managed resource of the same type "
                    "and an identity schema (Terraform decodes results with both)",
                    step="provider",
                    expected="a Resource and an identity (Resource.identity_schema or "
                    "ListResource.identity)",
                    seen=f"resource: {managed is not None}, identity: {identity is not None}",
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
