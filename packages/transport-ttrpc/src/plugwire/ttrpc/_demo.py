"""``plugwire demo`` rows for ttrpc: launch the bundled example plugin and call it."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence

from plugwire.core.demo import DemoRow
from plugwire.core.errors import RemoteError
from plugwire.core.process import PluginProcess
from plugwire.core.status import StatusCode

from .client import Client
from .errors import DeadlineExceededError, OversizedMessageError
from .example import SERVICE, exercise, pb
from .service import ServiceClient

FAMILY = "ttrpc"


async def demo() -> Sequence[DemoRow]:
    """Start ``python -m plugwire.ttrpc.example serve`` on a unix socket, then call
    every method of the upstream Streaming service, an error, a deadline and an
    oversized message."""
    rows: list[DemoRow] = []
    with tempfile.TemporaryDirectory(prefix="plugwire-ttrpc-") as tmp:
        address = f"unix:{os.path.join(tmp, 'example.sock')}"
        argv = [sys.executable, "-m", "plugwire.ttrpc.example", "serve", address]
        started = time.monotonic()
        async with PluginProcess(argv, env={}, inherit_env=True, name="ttrpc-example") as proc:
            line = await proc.readline_stdout(timeout=15)
            ok = bool(line and line.startswith("READY"))
            rows.append(
                DemoRow(
                    FAMILY,
                    "launch example plugin",
                    ok,
                    line or "no READY line",
                    time.monotonic() - started,
                )
            )
            if not ok:
                return rows
            async with await Client.connect(address) as client:
                for name, passed, detail in await exercise(client):
                    rows.append(DemoRow(FAMILY, f"Streaming/{name}", passed, detail))
                stub = ServiceClient(client, SERVICE)
                try:
                    await stub.Echo(
                        pb.EchoPayload(), metadata={"fail-code": "5", "fail-message": "no such key"}
                    )
                    rows.append(DemoRow(FAMILY, "status code", False, "no error"))
                except RemoteError as exc:
                    rows.append(
                        DemoRow(FAMILY, "status code", exc.code == StatusCode.NOT_FOUND, str(exc))
                    )
                t0 = time.monotonic()
                try:
                    await stub.Echo(pb.EchoPayload(), metadata={"sleep-ms": "5000"}, timeout=0.2)
                    rows.append(DemoRow(FAMILY, "deadline", False, "no deadline error"))
                except DeadlineExceededError:
                    took = time.monotonic() - t0
                    rows.append(
                        DemoRow(FAMILY, "deadline", took < 2, f"expired after {took:.2f}s", took)
                    )
                try:
                    await stub.Echo(pb.EchoPayload(msg="x" * (5 << 20)))
                    rows.append(DemoRow(FAMILY, "oversized message", False, "was sent"))
                except OversizedMessageError as exc:
                    again = await stub.Echo(pb.EchoPayload(seq=1))
                    rows.append(
                        DemoRow(
                            FAMILY,
                            "oversized message",
                            again.seq == 2,
                            f"refused: {exc.message}; connection lives",
                        )
                    )
    return rows
