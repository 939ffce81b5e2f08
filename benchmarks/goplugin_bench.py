"""go-plugin KV round trips: plugwire vs bare grpc.aio, plus cold start. Not a test.

Run: ``.venv/bin/python benchmarks/goplugin_bench.py [--quick]``

Unary KV ``Get`` (16-byte value) over a unix socket, p50/p99 latency and calls/s at
1 and 64 concurrent calls, for:

* bare grpc.aio     -- grpc.aio client -> grpc.aio server, same proto (the baseline)
* plugwire->plugwire -- plugwire PluginClient (dispensed stub) -> plugwire serve() plugin
* Go host->plugwire  -- real hashicorp/go-plugin host -> plugwire plugin
* plugwire->Go       -- plugwire PluginClient -> go-plugin Go plugin (tests/interop/goplugin)

and cold start (spawn to first reply) of a plugwire plugin through the PluginClient, against
``python -c "import grpc"``. Every figure is compared with its baseline as a ratio.
Go harnesses are built with tests/support/gobuild.py (cached in ~/.cache/plugwire).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.gobuild import build_go  # noqa: E402

from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin  # noqa: E402
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc  # noqa: E402

PLUGIN = [sys.executable, str(Path(__file__).with_name("goplugin_kv_plugin.py"))]
QUICK = "--quick" in sys.argv
N = {1: 600 if QUICK else 2000, 64: 1920 if QUICK else 6400}
WARMUP = 200
Row = dict[str, float]


async def measure(call: Callable[[], Awaitable[object]], conc: int) -> Row:
    for _ in range(WARMUP):
        await call()
    n = N[conc]
    per = n // conc
    lat: list[float] = []

    async def worker() -> None:
        for _ in range(per):
            t = time.perf_counter()
            await call()
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall = time.perf_counter() - start
    lat.sort()
    return {
        "p50_us": lat[len(lat) // 2] * 1e6,
        "p99_us": lat[len(lat) * 99 // 100] * 1e6,
        "calls_per_s": len(lat) / wall,
    }


async def bench_bare() -> dict[int, Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kv.sock")
        proc = await asyncio.create_subprocess_exec(
            *PLUGIN, "--bare", path, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None and (await proc.stdout.readline()).strip() == b"ready"
            async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
                stub = kv_pb2_grpc.KVStub(channel)
                await stub.Put(kv_pb2.PutRequest(key="bench", value=b"0123456789abcdef"))
                req = kv_pb2.GetRequest(key="bench")
                return {c: await measure(lambda: stub.Get(req), c) for c in (1, 64)}
        finally:
            proc.terminate()
            await proc.wait()


async def bench_plugwire_host(cmd: list[str]) -> dict[int, Row]:
    cfg = ClientConfig(
        handshake=HANDSHAKE, plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub)}, cmd=cmd
    )
    async with PluginClient(cfg) as client:
        stub = client.dispense("kv_grpc")
        await stub.Put(kv_pb2.PutRequest(key="bench", value=b"0123456789abcdef"))
        req = kv_pb2.GetRequest(key="bench")
        return {c: await measure(lambda: stub.Get(req), c) for c in (1, 64)}


def bench_go_host(benchhost: Path) -> dict[int, Row]:
    rows = {}
    for c in (1, 64):
        out = subprocess.run(
            [str(benchhost), "-n", str(N[c]), "-c", str(c), "-warmup", str(WARMUP), "--", *PLUGIN],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        rows[c] = {k: float(data[k]) for k in ("p50_us", "p99_us", "calls_per_s")}
    return rows


async def cold_start(rounds: int) -> tuple[float, float]:
    plugwire, baseline = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", "import grpc")
        assert await child.wait() == 0
        baseline.append(time.perf_counter() - t)
        cfg = ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub)},
            cmd=PLUGIN,
        )
        t = time.perf_counter()
        async with PluginClient(cfg) as client:
            await client.dispense("kv_grpc").Get(kv_pb2.GetRequest(key="x"))
            plugwire.append(time.perf_counter() - t)
    return statistics.median(plugwire), statistics.median(baseline)


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 shared cores)", flush=True)
    benchhost = build_go("goplugin", "./cmd/benchhost", name="benchhost")
    goplugin = build_go("goplugin", "./cmd/kvplugin", name="kvplugin")
    results: dict[str, dict[int, Row]] = {}
    results["bare grpc.aio"] = asyncio.run(bench_bare())
    results["plugwire->plugwire"] = asyncio.run(bench_plugwire_host(PLUGIN))
    results["Go host->plugwire"] = bench_go_host(benchhost)
    results["plugwire->Go"] = asyncio.run(bench_plugwire_host([str(goplugin)]))
    base = results["bare grpc.aio"]
    print()
    print(
        f"{'case':<20} {'conc':>4} {'p50 us':>9} {'p99 us':>9} {'calls/s':>9}  "
        f"{'p50 x':>6} {'p99 x':>6} {'rate x':>6}"
    )
    for name, rows in results.items():
        for c, r in rows.items():
            b = base[c]
            print(
                f"{name:<20} {c:>4} {r['p50_us']:>9.0f} {r['p99_us']:>9.0f} "
                f"{r['calls_per_s']:>9.0f}  {r['p50_us'] / b['p50_us']:>6.2f} "
                f"{r['p99_us'] / b['p99_us']:>6.2f} {r['calls_per_s'] / b['calls_per_s']:>6.2f}"
            )
    plugwire, baseline = asyncio.run(cold_start(3 if QUICK else 5))
    print()
    print(
        f"cold start, spawn to first reply: plugwire {plugwire * 1e3:.0f} ms, "
        f"python -c 'import grpc' {baseline * 1e3:.0f} ms, ratio {plugwire / baseline:.2f}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
