"""``plugwire bench cipd``: CIPD admission checks, luci (Go) host/plugin pairs vs plugwire.

Every check is a distinct pin (no cache hits). Hosts: plugwire's :class:`CipdHost` in
this process, and luci's Go host (tests/interop/cipd/cmd/cipdhost in bench mode, which
reports only checks and seconds: its latency figures are the mean from Little's law,
in flight / rate). Plugins: plugwire's (``serve``, admit-all) and luci's Go plugin
library (tests/interop/cipd/cmd/admissionplugin admit-all).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import sys
import time
from typing import Any

import anyio

from plugwire.core.bench import (
    BenchContext,
    Contender,
    Level,
    Suite,
    run_to_end,
)
from plugwire.core.bench._model import level_from_latencies

from .host import CipdHost
from .pins import Pin

__all__ = ["SUITE"]

PLUGIN = [sys.executable, "-m", "plugwire.grpc.cipd._bench_peer"]
SERVICE = "https://cipd.example.com"
_serial = itertools.count()


def _pins(count: int) -> list[Pin]:
    prefix = f"b{next(_serial)}"
    out = []
    for i in range(count):
        digest = hashlib.sha256(f"{prefix}-{i}".encode()).digest()
        iid = base64.urlsafe_b64encode(digest + b"\x02").rstrip(b"=").decode()
        out.append(Pin(f"bench/{prefix}/pkg{i % 100}", iid))
    return out


async def _go_plugin(ctx: BenchContext) -> list[str]:
    return [str(await ctx.go("cipd", "./cmd/admissionplugin")), "admit-all"]


class PlugwireHost(Contender):
    def __init__(self, name: str, go_plugin: bool) -> None:
        self.name = name
        self.go_plugin = go_plugin
        self.plugin: Any = None
        self._pids: list[int] = []

    async def _argv(self, ctx: BenchContext) -> list[str]:
        return await _go_plugin(ctx) if self.go_plugin else PLUGIN

    async def start(self, ctx: BenchContext) -> None:
        host = await ctx.stack.enter_async_context(CipdHost(service_url=SERVICE))
        self.plugin = await host.launch(await self._argv(ctx), name=self.name.split()[-2])
        pid = getattr(self.plugin, "pid", None)
        self._pids = [pid] if isinstance(pid, int) else []

    def pids(self) -> list[int]:
        return self._pids

    async def measure(self, calls: int, inflight: int) -> Level:
        todo = iter(_pins(calls))
        latencies: list[float] = []

        async def worker() -> None:
            for pin in todo:
                t0 = time.perf_counter()
                await self.plugin.check_admission(pin).wait()
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(inflight):
                tg.start_soon(worker)
        return level_from_latencies(latencies, time.perf_counter() - start)

    async def cold_start(self, ctx: BenchContext) -> float | None:
        argv = await self._argv(ctx)
        t0 = time.perf_counter()
        async with CipdHost(service_url=SERVICE) as host:
            plugin = await host.launch(argv, name="cold")
            await plugin.check_admission(_pins(1)[0]).wait()
            seconds = time.perf_counter() - t0
            await plugin.aclose()
        return seconds


class GoHost(Contender):
    def __init__(self, name: str, go_plugin: bool) -> None:
        self.name = name
        self.go_plugin = go_plugin
        self.host = ""
        self.argv: list[str] = []

    async def start(self, ctx: BenchContext) -> None:
        self.host = str(await ctx.go("cipd", "./cmd/cipdhost"))
        self.argv = await _go_plugin(ctx) if self.go_plugin else PLUGIN
        self.scratch = ctx.tmp

    async def _run(self, pins: int, inflight: int) -> tuple[int, float]:
        scenario: dict[str, Any] = {"service_url": SERVICE, "plugin": self.argv}
        scenario["bench"] = {"pins": pins, "inflight": inflight}
        path = self.scratch / f"cipd-{next(_serial)}.json"
        path.write_text(json.dumps(scenario))
        out = await run_to_end([self.host, str(path)], name="cipdhost")
        data = json.loads(out[-1])
        return int(data["checks"]), float(data["seconds"])

    async def measure(self, calls: int, inflight: int) -> Level:
        checks, seconds = await self._run(calls, inflight)
        rate = checks / seconds
        mean_us = inflight / rate * 1e6
        return Level(mean_us, mean_us, rate)


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        GoHost("luci Go host <-> luci Go plugin", go_plugin=True),
        GoHost("luci Go host -> plugwire plugin", go_plugin=False),
        PlugwireHost("plugwire host -> luci Go plugin", go_plugin=True),
        PlugwireHost("plugwire host <-> plugwire plugin", go_plugin=False),
    ]


SUITE = Suite(
    name="cipd",
    title="CIPD admission checks (distinct pins)",
    baseline="luci Go host <-> luci Go plugin",
    contenders=_contenders,
    calls=(1000, 100),
    warmup=(100, 10),
    pairs=[
        ("luci Go host -> plugwire plugin", "luci Go host <-> luci Go plugin"),
        ("plugwire host <-> plugwire plugin", "plugwire host -> luci Go plugin"),
    ],
    notes=["luci Go host rows: p50 = p99 = mean latency (in flight / rate); it reports rates"],
)
