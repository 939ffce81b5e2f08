"""``plugwire bench nri``: one CreateContainer hook round trip through a runtime.

Runtimes: plugwire's :class:`Runtime` (in this process) and containerd/nri's
``pkg/adaptation`` (tests/interop/nri/cmd/nriruntime, which times the calls itself so
its stdin/stdout command channel is not measured). Plugins, each in its own process,
answer with the same adjustment (one env var): plugwire's :class:`Stub` and a Go plugin
on containerd/nri's ``pkg/stub`` (tests/interop/nri/cmd/nriplugin). Calls are
sequential, as a runtime makes them: figures at 1 in flight only.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from plugwire.core.bench import BenchContext, Contender, Level, Suite, Unavailable
from plugwire.core.bench._model import level_from_latencies
from plugwire.core.process import PluginProcess

from .api import pb
from .runtime import Runtime

__all__ = ["SUITE"]

PEER = [sys.executable, "-m", "plugwire.ttrpc.nri._bench_peer"]
POD: dict[str, Any] = {"id": "pod0", "name": "pod0", "namespace": "default"}
CONTAINER: dict[str, Any] = {"id": "c1", "pod_sandbox_id": "pod0", "name": "c1", "env": ["A=1"]}
_serial = itertools.count()


def _socket(ctx: BenchContext) -> Path:
    path = ctx.path(f"nri-{next(_serial)}") / "nri.sock"
    os.makedirs(path.parent, mode=0o700)
    return path


class Half(Contender):
    """One runtime/plugin pairing, kept up for the whole suite."""

    levels = (1,)

    def __init__(self, name: str, go_runtime: bool, go_plugin: bool) -> None:
        self.name = name
        self.go_runtime = go_runtime
        self.go_plugin = go_plugin
        self.runtime: Any = None
        self.go: PluginProcess | None = None
        self._pids: list[int] = []

    def pids(self) -> list[int]:
        return self._pids

    async def _plugin(self, ctx: BenchContext, sock: Path) -> PluginProcess:
        if self.go_plugin:
            binary = await ctx.go("nri", "./cmd/nriplugin")
            argv = [str(binary), "-socket", str(sock), "-idx", "10", "-name", "bench"]
            return await ctx.spawn([*argv, "-env", "BENCH=1"], name="nri-go-plugin")
        return await ctx.spawn([*PEER, str(sock)], name="nri-plugwire-plugin")

    async def _cmd(self, op: str, **kw: Any) -> Any:
        assert self.go is not None
        await self.go.write_stdin((json.dumps({"op": op, **kw}) + "\n").encode())
        line = await self.go.readline_stdout(timeout=60)
        if line is None:
            raise Unavailable(f"nriruntime exited: {' | '.join(self.go.stderr_tail[-5:])}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"nriruntime {op}: {reply.get('error')}")
        return reply

    async def _up(self, ctx: BenchContext) -> float:
        """Start the runtime, then the plugin; seconds from plugin launch to first reply."""
        sock = _socket(ctx)
        if self.go_runtime:
            binary = await ctx.go("nri", "./cmd/nriruntime")
            self.go = await ctx.spawn([str(binary)], name="nriruntime")
            await self._cmd("start", socket=str(sock))
            t0 = time.perf_counter()
            plugin = await self._plugin(ctx, sock)
            await self._cmd("wait_plugins", count=1, timeout=30)
            await self._cmd("bench_create", request=self._request(), calls=1)
        else:
            self.runtime = await ctx.stack.enter_async_context(
                Runtime("bench", "0.1", socket_path=sock)
            )
            t0 = time.perf_counter()
            plugin = await self._plugin(ctx, sock)
            await self.runtime.wait_for_plugins(1, timeout=30)
            await self.runtime.create_container(pb.PodSandbox(**POD), pb.Container(**CONTAINER))
        seconds = time.perf_counter() - t0
        self._pids = [plugin.pid]
        return seconds

    def _request(self) -> dict[str, Any]:
        return {"pod": POD, "container": CONTAINER}

    async def start(self, ctx: BenchContext) -> None:
        await self._up(ctx)

    async def measure(self, calls: int, inflight: int) -> Level:
        if self.go is not None:
            t0 = time.perf_counter()
            reply = await self._cmd("bench_create", request=self._request(), calls=calls)
            values = [int(v) / 1e9 for v in reply["result"]["value"]]
            return level_from_latencies(values, sum(values) or time.perf_counter() - t0)
        pod, ctr = pb.PodSandbox(**POD), pb.Container(**CONTAINER)
        latencies = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await self.runtime.create_container(pod, ctr)
            latencies.append(time.perf_counter() - t0)
        return level_from_latencies(latencies, sum(latencies))

    async def cold_start(self, ctx: BenchContext) -> float | None:
        keep = self.runtime, self.go, self._pids
        try:
            return await self._up(ctx)
        finally:
            self.runtime, self.go, self._pids = keep


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        Half("all-Go (adaptation + Go stub)", go_runtime=True, go_plugin=True),
        Half("Go runtime + plugwire plugin", go_runtime=True, go_plugin=False),
        Half("plugwire runtime + Go plugin", go_runtime=False, go_plugin=True),
        Half("all-plugwire", go_runtime=False, go_plugin=False),
    ]


SUITE = Suite(
    name="nri",
    title="NRI CreateContainer hook round trip, one plugin",
    baseline="all-Go (adaptation + Go stub)",
    contenders=_contenders,
    calls=(2000, 100),
    notes=["sequential calls (as a runtime makes them); calls/s = 1 / mean latency"],
    pairs=[
        ("Go runtime + plugwire plugin", "all-Go (adaptation + Go stub)"),
        ("plugwire runtime + Go plugin", "all-Go (adaptation + Go stub)"),
    ],
)
