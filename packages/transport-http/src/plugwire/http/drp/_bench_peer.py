"""The provider of ``plugwire bench drp``: ``incrstatus`` answers ``Running``, as the
Go stand-in (tests/interop/drp/cmd/goprovider) and upstream's incrementer do.

Run as ``python -m plugwire.http.drp._bench_peer define|unpack DIR|listen TO FROM``.
"""

from __future__ import annotations

from typing import Any

from plugwire.http.drp import (
    Action,
    AvailableAction,
    PluginProvider,
    Provider,
    ProviderContext,
    ProviderError,
    serve,
)

DEFINITION = PluginProvider(
    name="incrementer",
    version="0.1.0",
    available_actions=[AvailableAction(command="incrstatus")],
)


class Status(Provider):
    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        return None

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        if action.command == "incrstatus":
            return "Running"
        raise ProviderError(f"Unknown command: {action.command}", code=404, key="incrementer")


if __name__ == "__main__":
    serve(Status, DEFINITION, version="0.1.0", short="bench provider")
