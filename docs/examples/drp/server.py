#!/usr/bin/env python3
"""Host a dr-provision plugin provider the way dr-provision does.

Runs the Python incrementer next to this file (or any provider executable given as
arguments, e.g. a Go one built on the upstream ``plugin`` package) against a tiny
in-process stand-in for the dr-provision API, and calls its actions::

    python server.py                          # the Python incrementer
    python server.py /path/to/go-incrementer  # any provider binary
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

from plugwire.core.transport import Address
from plugwire.http import HttpServer, Request, Response
from plugwire.http.drp import ActionRefusedError, ProviderHost

HERE = Path(__file__).resolve().parent
TOKEN = "example-token"


class MachineParams:
    """Just enough of the dr-provision API for incrementer: machine params."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def __call__(self, request: Request) -> Response:
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Response.json({"Code": 401}, 401)
        key = request.path.split("/params/", 1)[-1]
        if request.method == "POST":
            self.values[key] = json.loads(request.body)
        elif request.method == "DELETE":
            return Response.json(self.values.pop(key, None))
        return Response.json(self.values.get(key))


async def main(command: list[str]) -> None:
    api = MachineParams()
    async with (
        HttpServer(api).serve(Address("tcp", "127.0.0.1:0")) as bound,
        ProviderHost(endpoint=f"http://{bound.address}", token=TOKEN) as drp,
    ):
        definition = await drp.define(command)
        print("provider:", definition.name, [a.command for a in definition.available_actions])
        # listen TO FROM, READY!: the provider's server API runs in the host's task group
        incr = await drp.launch(command, definition=definition)
        await incr.config({})
        machine = {"Uuid": "0b3f1e9a-0000-4000-8000-000000000042", "Name": "example"}
        print("incrstatus ->", await incr.action("incrstatus"))
        for step in (1, 2):
            value = await incr.action("increment", model=machine, params={"incrementer/step": step})
            print(f"increment by {step} ->", value)
        try:
            await incr.action("reset_count", model=machine)
        except ActionRefusedError as exc:
            print("refused before the call:", exc.message)
        print(
            "reset_count ->",
            await incr.action("reset_count", model=machine, params={"incrementer/touched": 0}),
        )
        print("params on the API:", api.values)
        print("log lines received:", len(incr.logs))
        await drp.close(incr)  # POST /stop, then (if need be) SIGTERM, SIGKILL
        print("provider exit status:", incr.returncode)


if __name__ == "__main__":
    cmd = sys.argv[1:] or [sys.executable, str(HERE / "incrementer.py")]
    anyio.run(main, cmd)
