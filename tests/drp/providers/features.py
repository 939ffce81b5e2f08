"""A provider exercising the callbacks: log, publish, objects, leaving, dying.

``FEATURES_STOP=hang`` makes it ignore ``/stop`` (never answers it);
``FEATURES_STOP=hang-and-ignore-sigterm`` ignores SIGTERM as well."""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio

from plugwire.http.drp import (
    Action,
    AvailableAction,
    PluginProvider,
    Provider,
    ProviderContext,
    serve,
)

DEFINITION = PluginProvider(
    name="features",
    version="1.0",
    available_actions=[
        AvailableAction(command="env"),
        AvailableAction(command="chatter"),
        AvailableAction(command="cows"),
        AvailableAction(command="leave"),
        AvailableAction(command="die"),
        AvailableAction(command="print"),
        AvailableAction(command="sleep"),
        AvailableAction(command="big"),
        AvailableAction(command="needs", model="machines", required_params=["a", "b"]),
    ],
    store_objects={"cows": {}},
    required_params=["features/mode"],
)


class Features(Provider):
    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        ctx.logger.info("configured with %s", sorted(params))

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        cmd = action.command
        if cmd == "env":
            return {
                "endpoint": ctx.endpoint,
                "token": ctx.token,
                "fileserver": ctx.fileserver,
                "webroot": ctx.webroot,
                "cwd": os.getcwd(),
            }
        if cmd == "chatter":
            ctx.logger.warning("chatter %s", action.params.get("n"))
            await ctx.publish("cows", "moo", "bessie", {"Spotted": True})
            await ctx.log("error", "direct line")
            return "ok"
        if cmd == "cows":
            return await ctx.list_objects("cows")
        if cmd == "leave":
            await ctx.leaving()
            return "bye"
        if cmd == "die":
            await anyio.sleep(0.05)
            os._exit(7)
        if cmd == "print":
            print("stray print goes to stderr, not to the READY! channel")
            return "printed"
        if cmd == "sleep":
            await anyio.sleep(float(action.params.get("seconds", 1)))
            return "slept"
        if cmd == "big":
            return "x" * int(action.params.get("size", 0))
        if cmd == "needs":
            return action.params
        raise AssertionError(cmd)

    async def stop(self, ctx: ProviderContext) -> None:
        mode = os.environ.get("FEATURES_STOP", "")
        if mode == "slow":
            await anyio.sleep(3)
            return
        if mode == "hang-and-ignore-sigterm":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if mode.startswith("hang"):
            await anyio.sleep_forever()


if __name__ == "__main__":
    serve(Features, DEFINITION, version="1.0")
