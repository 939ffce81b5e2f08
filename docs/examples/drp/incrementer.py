#!/usr/bin/env python3
"""A dr-provision plugin provider in Python: a port of upstream's cmds/incrementer.

Run it the way dr-provision does::

    python incrementer.py define               # the models.PluginProvider JSON
    python incrementer.py unpack /tmp/files    # writes /tmp/files/testFile
    python incrementer.py listen TO.sock FROM.sock   # serves, prints READY!

Actions: ``increment`` (machines; optional ``incrementer/step`` and
``incrementer/parameter``) adds the step to a machine parameter through the
dr-provision API at ``RS_ENDPOINT`` (token ``RS_TOKEN``) and bumps
``incrementer/touched``; ``reset_count`` (machines; requires
``incrementer/touched``) deletes ``incrementer/touched``; ``incrstatus`` (system)
answers ``"Running"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from plugwire.http.drp import (
    Action,
    AvailableAction,
    Event,
    PluginProvider,
    Provider,
    ProviderContext,
    ProviderError,
    serve,
)

VERSION = "v4.0.0-plugwire"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

DEFINITION = PluginProvider(
    name="incrementer",
    version=VERSION,
    plugin_version=4,
    has_publish=True,
    available_actions=[
        AvailableAction(
            command="increment",
            model="machines",
            optional_params=["incrementer/step", "incrementer/parameter"],
        ),
        AvailableAction(
            command="reset_count", model="machines", required_params=["incrementer/touched"]
        ),
        AvailableAction(command="incrstatus"),
    ],
    store_objects={
        "cows": {},
        "typed-cows": {
            "Spotted": {"type": "boolean", "isrequired": True},
            "CanMilk": {"type": "boolean"},
            "Location": {"type": "string"},
        },
    },
)


def _fail(code: int, message: str) -> ProviderError:
    return ProviderError(message, code=code, model="plugin", key="incrementer", type="plugin")


class Incrementer(Provider):
    def __init__(self) -> None:
        self.api: httpx.AsyncClient | None = None

    async def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        ctx.logger.info("Config: %s", params)
        if self.api is not None:
            await self.api.aclose()
        self.api = httpx.AsyncClient(
            base_url=ctx.endpoint.rstrip("/") + "/api/v3",
            headers={"Authorization": f"Bearer {ctx.token}"},
            verify=False,
            timeout=10,
        )

    async def _param(self, method: str, uuid: str, name: str, body: Any = None) -> Any:
        assert self.api is not None, "config() comes first"
        try:
            resp = await self.api.request(
                method, f"/machines/{uuid}/params/{name}", json=body if method == "POST" else None
            )
        except httpx.HTTPError as exc:
            raise _fail(400, f"{method} {name}: {exc}") from None
        if resp.status_code >= 400:
            raise _fail(400, f"{method} {name}: HTTP {resp.status_code} {resp.text.strip()}")
        return resp.json()

    async def _bump(self, uuid: str, name: str, step: int) -> int:
        current = await self._param("GET", uuid, name)
        value = step + (int(current) if isinstance(current, (int, float)) else 0)
        await self._param("POST", uuid, name, value)
        return value

    @staticmethod
    def _uuid(action: Action) -> str:
        # Like upstream's Remarshal into models.Machine: not an object is a 409,
        # a machine without Uuid has the zero UUID.
        machine = action.model
        if not isinstance(machine, dict):
            raise _fail(409, f"cannot read a machine from {machine!r}")
        uuid = machine.get("Uuid") or ZERO_UUID
        if not isinstance(uuid, str):
            raise _fail(409, f"machine Uuid is not a string: {uuid!r}")
        return uuid

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        ctx.logger.info("Action: %s", action.command)
        if action.command == "increment":
            uuid = self._uuid(action)
            parameter = action.params.get("incrementer/parameter")
            if not isinstance(parameter, str):
                parameter = "incrementer/default"
            step = action.params.get("incrementer/step", 1)
            step = int(step) if isinstance(step, (int, float)) else 1
            value = await self._bump(uuid, parameter, step)
            await self._bump(uuid, "incrementer/touched", 1)
            return value
        if action.command == "reset_count":
            await self._param("DELETE", self._uuid(action), "incrementer/touched")
            return "Success"
        if action.command == "incrstatus":
            return "Running"
        raise _fail(404, f"Unknown command: {action.command}\n")

    async def publish(self, ctx: ProviderContext, event: Event) -> None:
        ctx.logger.debug("Plugin received: %s.%s.%s", event.type, event.action, event.key)

    def unpack(self, ctx: ProviderContext, directory: Path) -> None:
        (directory / "testFile").write_text("ImaFile")

    async def stop(self, ctx: ProviderContext) -> None:
        if self.api is not None:
            await self.api.aclose()


if __name__ == "__main__":
    serve(Incrementer, DEFINITION, version=VERSION, short="Increments a parameter on a machine")
