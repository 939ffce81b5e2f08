# type: ignore
"""pyvider (PyPI) provider of the shape of the Go example: ``example_thing`` (bench peer).

Imported by path (plugwire need not be importable there) by a Python that has pyvider
installed, then served with ``pyvider provide --force``: see ``_pyvider_command`` in
``_bench.py``. Not part of plugwire's API; pyvider is not a plugwire dependency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
from pyvider.providers import BaseProvider, register_provider
from pyvider.providers.base import ProviderMetadata
from pyvider.resources import BaseResource, register_resource
from pyvider.schema import a_map, a_num, a_str, s_resource


@register_provider("example")
class ExampleProvider(BaseProvider):
    def __init__(self) -> None:
        super().__init__(metadata=ProviderMetadata(name="example", version="0.1.0"))


@attrs.define
class ThingConfig:
    name: str
    size: float | None = None
    tags: dict[str, str] | None = None
    secret: str | None = None


@attrs.define
class ThingState:
    name: str
    id: str | None = None
    size: float | None = None
    tags: dict[str, str] | None = None
    secret: str | None = None
    created: str | None = None


@register_resource("example_thing")
class Thing(BaseResource):
    config_class = ThingConfig
    state_class = ThingState

    @classmethod
    def get_schema(cls) -> Any:
        return s_resource(
            {
                "id": a_str(computed=True),
                "name": a_str(required=True),
                "size": a_num(optional=True),
                "tags": a_map(a_str(), optional=True),
                "secret": a_str(optional=True, sensitive=True),
                "created": a_str(computed=True),
            }
        )

    async def read(self, ctx: Any) -> Any:
        return ctx.state

    async def _create_apply(self, ctx: Any) -> Any:
        # What the Go provider's Create does: id ``thing-<name>``, an RFC 3339 timestamp.
        plan = ctx.planned_state
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return attrs.evolve(plan, id=f"thing-{plan.name}", created=created), None

    async def _delete_apply(self, ctx: Any) -> None:
        return None

    async def _validate_config(self, config: Any) -> list[str]:
        return []


def serve() -> None:
    """``pyvider provide --force`` with this module's components.

    pyvider discovers components only in packages named by its ``pyvider`` entry points;
    this module is not installed, so discovery is extended to it (pyvider's
    ``ComponentDiscovery``, a private API: a bench peer, not plugwire code).
    """
    import sys

    from pyvider.cli.__main__ import main
    from pyvider.hub.discovery import ComponentDiscovery

    discover_all = ComponentDiscovery.discover_all

    async def discover(self: Any, strict: bool = False) -> None:
        await discover_all(self, strict)
        await self._discover_package(__name__, strict)

    ComponentDiscovery.discover_all = discover  # type: ignore[method-assign]
    sys.argv = [sys.argv[0], "provide", "--force"]
    main()
