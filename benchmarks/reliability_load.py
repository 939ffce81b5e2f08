"""Load: 64 concurrent callers for DURATION seconds against a go-plugin plugin (the
kv example, AutoMTLS), a ttrpc server (the Streaming example over a unix socket)
and an NRI plugin (CreateContainer through the runtime). Reports calls, errors,
p50/p99 latency and host RSS growth per target (docs/reliability.md).

    uv run python benchmarks/reliability_load.py [--duration 30] [--callers 64]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def hammer(
    name: str, call: Callable[[], Awaitable[object]], callers: int, duration: float
) -> None:
    for _ in range(20):  # warm up
        await call()
    before = rss_mib()
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + duration

    async def caller() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                await call()
            except Exception as exc:
                errors.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - t)

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
    after = rss_mib()
    latencies.sort()
    n = len(latencies)
    p50 = latencies[n // 2] * 1e3 if n else float("nan")
    p99 = latencies[min(n - 1, int(n * 0.99))] * 1e3 if n else float("nan")
    print(
        f"{name:10} calls {n:7}  errors {len(errors):3}  {n / duration:7.0f}/s  "
        f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  RSS {before:.1f} -> {after:.1f} MiB "
        f"({after - before:+.1f})",
        flush=True,
    )
    if errors:
        print("   first errors:", sorted(set(errors))[:3])


async def ttrpc_target(callers: int, duration: float) -> None:
    from plugwire.ttrpc import Client
    from plugwire.ttrpc.example import pb
    from plugwire.ttrpc.testing import make_server

    server = make_server()
    a, b = socket.socketpair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve_socket, a)
        async with await Client.from_socket(b) as client:
            payload = pb.EchoPayload(seq=1, msg="load").SerializeToString()

            async def call() -> object:
                return await client.call("ttrpc.integration.streaming.Streaming", "Echo", payload)

            await hammer("ttrpc", call, callers, duration)
        tg.cancel_scope.cancel()


async def family_target(family: str, callers: int, duration: float) -> None:
    from e2e.test_crossfamily import FAMILIES, launched

    from plugwire.core import Host

    with tempfile.TemporaryDirectory() as tmp:
        async with Host("load") as host, launched(host, Path(tmp), {family: FAMILIES[family]}) as p:
            [(_, call)] = p.values()
            await hammer(family, call, callers, duration)


async def main(callers: int, duration: float) -> None:
    print(f"{callers} callers x {duration:.0f} s per target")
    await ttrpc_target(callers, duration)
    for family in ("goplugin", "nri"):
        with contextlib.suppress(KeyboardInterrupt):
            await family_target(family, callers, duration)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--callers", type=int, default=64)
    args = parser.parse_args()
    anyio.run(main, args.callers, args.duration, backend="asyncio")
