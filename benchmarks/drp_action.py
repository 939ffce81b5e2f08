"""Benchmark: dr-provision action round trips through the plugwire server.

Run: ``.venv/bin/python benchmarks/drp_action.py [--calls N] [--backend asyncio|trio]``

One run, one table. The plugwire :class:`~plugwire.http.drp.ProviderPlugin` hosts each
provider the way dr-provision does (two unix sockets, READY!, config) and calls
``incrstatus`` (a pure round trip) and ``increment`` (which makes the provider call
back into a dr-provision API stand-in, 2 GETs + 2 POSTs on loopback TCP):

- plugwire provider: ``docs/examples/drp/incrementer.py`` (Python, h11 server);
- Go provider: ``tests/interop/drp/cmd/goprovider`` (net/http, the upstream
  plugin/mux rules; the upstream ``cmds/incrementer`` cannot be built here, see
  ``tests/interop/drp/README.md``).

Calls are sequential (dr-provision calls a provider's action per request); the
table shows p50/p99 latency, calls/s and the plugwire/Go ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "drp"))

from plugwire.core.transport import Address  # noqa: E402
from plugwire.http import HttpServer  # noqa: E402
from plugwire.http.drp import ProviderPlugin  # noqa: E402

TOKEN = "s3cr3t-token"  # what the FakeApi stand-in accepts
MACHINE = {"Uuid": "11111111-0000-4000-8000-000000000001", "Name": "bench"}


async def measure(
    command: list[str], endpoint: str, calls: int, backend: str
) -> dict[str, tuple[float, float, float]]:
    results: dict[str, tuple[float, float, float]] = {}
    env = {"PLUGWIRE_ANYIO_BACKEND": backend}
    async with ProviderPlugin(command, endpoint=endpoint, token=TOKEN, env=env) as host:
        await host.config({})
        for name, kwargs in (
            ("incrstatus", {}),
            ("increment", {"model": MACHINE, "params": {"incrementer/step": 1}}),
        ):
            for _ in range(min(50, calls)):  # warm up
                await host.action(name, **kwargs)
            samples: list[float] = []
            start = time.perf_counter()
            for _ in range(calls):
                t0 = time.perf_counter()
                await host.action(name, **kwargs)
                samples.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
            samples.sort()
            p50 = statistics.median(samples)
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            results[name] = (p50, p99, calls / elapsed)
    return results


async def main(calls: int, backend: str) -> None:
    from drp_support import FakeApi  # tests/drp/drp_support.py: the API stand-in
    from support.gobuild import build_go

    goprovider = build_go("drp", "./cmd/goprovider")
    api = FakeApi()
    rows: dict[str, dict[str, tuple[float, float, float]]] = {}
    async with HttpServer(api).serve(Address("tcp", "127.0.0.1:0")) as bound:
        endpoint = f"http://{bound.address}"
        example = ROOT / "docs" / "examples" / "drp" / "incrementer.py"
        rows["plugwire provider"] = await measure(
            [sys.executable, str(example)], endpoint, calls, backend
        )
        rows["Go provider"] = await measure([str(goprovider)], endpoint, calls, backend)
    print(f"drp action round trips through the plugwire server ({backend}), {calls} calls each")
    print(f"{'provider':<20} {'action':<12} {'p50 µs':>9} {'p99 µs':>9} {'calls/s':>9}")
    for provider, by_action in rows.items():
        for action, (p50, p99, rate) in by_action.items():
            print(f"{provider:<20} {action:<12} {p50 * 1e6:>9.0f} {p99 * 1e6:>9.0f} {rate:>9.0f}")
    print()
    print(f"{'ratio plugwire / Go':<33} {'p50':>9} {'calls/s':>9}")
    for action in ("incrstatus", "increment"):
        py: Any = rows["plugwire provider"][action]
        go: Any = rows["Go provider"][action]
        print(f"{action:<33} {py[0] / go[0]:>8.2f}x {py[2] / go[2]:>8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.calls, args.backend, backend=args.backend)
