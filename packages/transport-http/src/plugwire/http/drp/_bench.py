"""``plugwire bench drp``: dr-provision plugin action round trips (``incrstatus``).

plugwire's :class:`ProviderHost` hosts each provider the way dr-provision does (two
unix sockets, ``READY!``, config) and runs the system action ``incrstatus`` (a pure
round trip, no API callback): on a plugwire provider, and on the Go stand-in
(tests/interop/drp/cmd/goprovider: net/http and upstream's plugin/mux rules; upstream
``cmds/incrementer`` itself cannot be built here, see tests/interop/drp/README.md).
The baseline is the Go provider.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from plugwire.core.bench import BenchContext, CallContender, Contender, Suite

from .host import ProviderHost

__all__ = ["SUITE"]

PEER = [sys.executable, "-m", "plugwire.http.drp._bench_peer"]
_serial = itertools.count()


class Provider(CallContender):
    def __init__(self, name: str, go: bool) -> None:
        super().__init__(name)
        self.go = go

    async def _command(self, ctx: BenchContext) -> list[str]:
        return [str(await ctx.go("drp", "./cmd/goprovider"))] if self.go else PEER

    async def _launch(self, ctx: BenchContext) -> Any:
        host = await ctx.stack.enter_async_context(ProviderHost(token="bench"))
        provider = await host.launch(await self._command(ctx), name=f"p{next(_serial)}")
        await provider.config({})
        return provider

    async def start(self, ctx: BenchContext) -> None:
        provider = await self._launch(ctx)
        self.call = lambda: provider.action("incrstatus")
        pid = getattr(provider, "pid", None)
        self._pids = [pid] if isinstance(pid, int) else []

    async def cold_start(self, ctx: BenchContext) -> float | None:
        await self._command(ctx)
        t0 = time.perf_counter()
        provider = await self._launch(ctx)
        await provider.action("incrstatus")
        return time.perf_counter() - t0


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [Provider("Go provider (stand-in)", go=True), Provider("plugwire provider", go=False)]


SUITE = Suite(
    name="drp",
    title="dr-provision action round trip (incrstatus)",
    baseline="Go provider (stand-in)",
    contenders=_contenders,
    calls=(1000, 100),
    warmup=(50, 10),
    notes=["cold start includes `define` (the provider's definition) and `listen` to READY!"],
)
