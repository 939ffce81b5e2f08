"""The provider ``plugwire demo`` launches: an in-memory counter per machine.

Run as ``python -m plugwire.http.drp._demo_provider define|unpack DIR|listen TO FROM``.
"""

from __future__ import annotations

from pathlib import Path
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
    name="counter",
    version="0.1.0",
    available_actions=[
        AvailableAction(command="bump", model="machines", optional_params=["counter/step"]),
        AvailableAction(command="reset", model="machines", required_params=["counter/confirm"]),
        AvailableAction(command="status"),
    ],
    store_objects={"counters": {}},
)


class Counter(Provider):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        ctx.logger.info("configured: %s", sorted(params))

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        if action.command == "status":
            return {"machines": len(self.counts)}
        machine = action.model if isinstance(action.model, dict) else {}
        uuid = machine.get("Uuid")
        if not isinstance(uuid, str):
            raise ProviderError("not a machine", code=409, key="counter")
        if action.command == "bump":
            step = action.params.get("counter/step", 1)
            self.counts[uuid] = self.counts.get(uuid, 0) + int(step)
            await ctx.publish("counters", "bump", uuid, self.counts[uuid])
            return self.counts[uuid]
        if action.command == "reset":
            self.counts.pop(uuid, None)
            return "Success"
        raise ProviderError(f"Unknown command: {action.command}", code=404, key="counter")

    def unpack(self, ctx: ProviderContext, directory: Path) -> None:
        (directory / "counter.txt").write_text("counts machines\n")


if __name__ == "__main__":
    serve(Counter, DEFINITION, version="0.1.0", short="Counts per machine")
