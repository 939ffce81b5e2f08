"""The dr-provision family of ``plugwire demo``: host the bundled counter provider."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence

from plugwire.core.demo import DemoRow

from .errors import ActionRefusedError, ProviderError
from .host import ProviderHost

_F = "drp"


async def demo() -> Sequence[DemoRow]:
    rows: list[DemoRow] = []
    machine = {"Uuid": "6f1c0ad0-0000-4000-8000-00000000d3m0", "Name": "demo"}
    command = [sys.executable, "-m", "plugwire.http.drp._demo_provider"]
    async with ProviderHost(token="demo") as drp:
        start = time.monotonic()
        definition = await drp.define(command, name="counter")
        commands = [a.command for a in definition.available_actions]
        rows.append(
            DemoRow(
                _F,
                "define",
                commands == ["bump", "reset", "status"],
                f"actions {commands}",
                time.monotonic() - start,
            )
        )
        with tempfile.TemporaryDirectory(prefix="drp-demo-") as files:
            start = time.monotonic()
            await drp.unpack(command, files, name="counter")
            unpacked = sorted(os.listdir(files))
            rows.append(
                DemoRow(
                    _F,
                    "unpack",
                    unpacked == ["counter.txt"],
                    f"files {unpacked}",
                    time.monotonic() - start,
                )
            )
        start = time.monotonic()
        counter = await drp.launch(command, name="counter", definition=definition)
        rows.append(
            DemoRow(
                _F,
                "listen + READY!",
                counter.running,
                "two unix sockets in a 0700 dir",
                time.monotonic() - start,
            )
        )
        await counter.config({"counter/enabled": True})
        start = time.monotonic()
        values = [
            await counter.action("bump", model=machine, params={"counter/step": s})
            for s in (1, 2, 3)
        ]
        rows.append(
            DemoRow(
                _F,
                "action round trips",
                values == [1, 3, 6],
                f"bump x3 -> {values}; events published back: {len(counter.events)}",
                time.monotonic() - start,
            )
        )
        try:
            await counter.action("reset", model=machine)
            refused = "not refused"
        except ActionRefusedError as exc:
            refused = f"HTTP {exc.code}: {exc.message}"
        rows.append(DemoRow(_F, "missing param refused", refused.startswith("HTTP 400"), refused))
        try:
            await counter.action("bump", model={"Name": "no uuid"})
            answered = "no error"
        except ProviderError as exc:
            answered = f"models.Error {exc.code}: {exc.error.messages}"
        rows.append(DemoRow(_F, "provider error typed", "409" in answered, answered))
        start = time.monotonic()
        await drp.close(counter)
        status = counter.returncode
        rows.append(
            DemoRow(_F, "stop", status == 0, f"exit status {status}", time.monotonic() - start)
        )
    return rows
