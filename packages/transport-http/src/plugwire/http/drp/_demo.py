"""The dr-provision family of ``plugwire demo``: host the bundled counter provider."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence

from plugwire.core.demo import DemoRow
from plugwire.core.errors import PlugwireError

from .errors import ActionRefusedError, ProviderError
from .host import ProviderHost

_F = "drp"


async def demo() -> Sequence[DemoRow]:
    rows: list[DemoRow] = []
    machine = {"Uuid": "6f1c0ad0-0000-4000-8000-00000000d3m0", "Name": "demo"}
    host = ProviderHost(
        [sys.executable, "-m", "plugwire.http.drp._demo_provider"], name="counter", token="demo"
    )
    start = time.monotonic()
    definition = await host.define()
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
        await host.unpack(files)
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
    async with host:
        rows.append(
            DemoRow(
                _F,
                "listen + READY!",
                host.running,
                "two unix sockets in a 0700 dir",
                time.monotonic() - start,
            )
        )
        await host.config({"counter/enabled": True})
        start = time.monotonic()
        values = [
            await host.action("bump", model=machine, params={"counter/step": s}) for s in (1, 2, 3)
        ]
        rows.append(
            DemoRow(
                _F,
                "action round trips",
                values == [1, 3, 6],
                f"bump x3 -> {values}; events published back: {len(host.events)}",
                time.monotonic() - start,
            )
        )
        try:
            await host.action("reset", model=machine)
            refused = "not refused"
        except ActionRefusedError as exc:
            refused = f"HTTP {exc.code}: {exc.message}"
        rows.append(DemoRow(_F, "missing param refused", refused.startswith("HTTP 400"), refused))
        try:
            await host.action("bump", model={"Name": "no uuid"})
            answered = "no error"
        except ProviderError as exc:
            answered = f"models.Error {exc.code}: {exc.error.messages}"
        rows.append(DemoRow(_F, "provider error typed", "409" in answered, answered))
        start = time.monotonic()
        try:
            status = await host.stop()
        except PlugwireError as exc:  # pragma: no cover - shown in the table
            status = None
            rows.append(DemoRow(_F, "stop", False, str(exc)))
        else:
            rows.append(
                DemoRow(_F, "stop", status == 0, f"exit status {status}", time.monotonic() - start)
            )
    return rows
