"""The core family of ``plugwire demo``: a host launching the bundled example plugin."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

from ._example_plugin import HANDSHAKE
from .demo import DemoRow
from .handle import ProcessPlugin
from .host import Host
from .logs import parse_log_line


async def demo() -> Sequence[DemoRow]:
    rows: list[DemoRow] = []
    argv = [sys.executable, "-m", "plugwire.core._example_plugin"]
    env_ok = {**HANDSHAKE.cookie_env(), "PLUGWIRE_PROTOCOL_VERSIONS": "1,2,3"}
    levels: list[int] = []
    async with Host("demo") as host:
        start = time.monotonic()
        upper = await host.launch(
            ProcessPlugin(
                "upper",
                argv,
                env=env_ok,
                stdin=True,
                polite_signal=None,
                on_stderr=lambda line: levels.append(parse_log_line(line)[0]),
            )
        )
        proc = upper.process
        announce = await proc.readline_stdout(timeout=10)
        core, version, _name = (announce or "").split("|")
        rows.append(
            DemoRow(
                "core",
                "launch + handshake",
                core == "1" and version == "2",
                f"announce {announce!r}: negotiated v{version} of [1, 2] x [1, 2, 3]",
                time.monotonic() - start,
            )
        )
        start = time.monotonic()
        await proc.write_stdin(b"hello plugin\n")
        reply = await proc.readline_stdout(timeout=10)
        rows.append(
            DemoRow(
                "core",
                "call over stdio",
                reply == "HELLO PLUGIN",
                f"reply {reply!r}",
                time.monotonic() - start,
            )
        )
        await host.close("upper")
        seen = sorted({logging.getLevelName(level) for level in levels})
        rows.append(
            DemoRow(
                "core",
                "stderr hclog -> logging",
                {"INFO", "WARNING"} <= set(seen),
                f"levels seen {seen}; exit status {proc.returncode}",
            )
        )
        bad = (await host.launch(ProcessPlugin("no-cookie", argv, env={}))).process
        status = await bad.wait()
        rows.append(
            DemoRow(
                "core",
                "wrong cookie refused",
                status == 1 and bool(bad.stderr_tail),
                f"exit {status}: {bad.stderr_tail[-1][:60] if bad.stderr_tail else ''}...",
            )
        )
    return rows
