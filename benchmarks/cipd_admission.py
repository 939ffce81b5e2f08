"""Benchmark: CIPD admission checks per second, Python plugin vs luci's Go plugin.

Run: ``.venv/bin/python benchmarks/cipd_admission.py [--pins 10000] [--inflight 1,64]``

One run, one table. The same plugwire host (:class:`plugwire.grpc.cipd.CipdHost`)
checks N distinct pins (each a new admission: no cache hits) through

- the plugwire Python plugin: ``tests/cipd/plugins/modes.py admit-all``
  (:func:`plugwire.grpc.cipd.plugin.serve_async`);
- luci's Go plugin library: ``tests/interop/cipd/cmd/admissionplugin admit-all``
  (``plugins/admission.Run`` from go.chromium.org/luci, built via support.gobuild);

with 1 check in flight (check, wait, next) and with 64 in flight. Both plugins run
side by side (warmed up with 200 checks each) and take the pins in alternating
slices (``--rounds``), so load changes on a shared machine hit both alike. The last
column is the Python plugin's throughput as a fraction of the Go plugin's.

The same pairs then run under luci's own Go host (``tests/interop/cipd/cmd/cipdhost``
in bench mode): with a host that is not itself the bottleneck, these rows show what
the Python plugin side costs against Go.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.gobuild import build_go  # noqa: E402

from plugwire.grpc.cipd import AdmissionPlugin, CipdHost, Pin  # noqa: E402

MODES = ROOT / "tests" / "cipd" / "plugins" / "modes.py"


def pins(prefix: str, count: int) -> list[Pin]:
    out = []
    for i in range(count):
        digest = hashlib.sha256(f"{prefix}{i}".encode()).digest()
        iid = base64.urlsafe_b64encode(digest + b"\x02").rstrip(b"=").decode()
        out.append(Pin(f"bench/{prefix}/pkg{i % 100}", iid))
    return out


async def _worker(plugin: AdmissionPlugin, todo: Iterator[Pin], out: list[float]) -> None:
    for pin in todo:
        t0 = time.perf_counter()
        await plugin.check_admission(pin).wait()
        out.append(time.perf_counter() - t0)


async def measure(
    host: CipdHost, plugins: dict[str, list[str]], count: int, inflight: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Checks/s and p50 latency (ms) per plugin for ``count`` distinct pins.

    Both plugins run side by side; the pins go in ``rounds`` alternating slices, so a
    change of machine load hits both alike.
    """
    running = {
        name: await host.launch(argv, name=name.split()[0]) for name, argv in plugins.items()
    }
    for name, plugin in running.items():
        for promise in plugin.prefetch(pins(f"warm-{name.split()[0]}-{inflight}", 200)):
            await promise.wait()
    elapsed = dict.fromkeys(running, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in running}
    for r in range(rounds):
        for name, plugin in running.items():
            todo = iter(pins(f"run-{name.split()[0]}-{inflight}-{r}", count // rounds))
            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(inflight):
                    tg.start_soon(_worker, plugin, todo, latencies[name])
            elapsed[name] += time.perf_counter() - start
    for plugin in running.values():
        await plugin.aclose()
    return {
        name: (len(latencies[name]) / elapsed[name], statistics.median(latencies[name]) * 1000)
        for name in running
    }


def measure_go_host(host: Path, argv: list[str], count: int, inflight: int) -> tuple[int, float]:
    """(checks, seconds) of luci's Go host (cipdhost bench mode) driving ``argv``."""
    scenario = {
        "service_url": "https://cipd.example.com",
        "plugin": argv,
        "bench": {"pins": count, "inflight": inflight},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(scenario, f)
        f.flush()
        out = subprocess.run(
            [str(host), f.name], capture_output=True, text=True, check=True, timeout=600
        )
    result = json.loads(out.stdout.splitlines()[-1])
    return int(result["checks"]), float(result["seconds"])


async def main(count: int, levels: list[int], rounds: int) -> None:
    started = time.perf_counter()
    go_plugin = build_go("cipd", "./cmd/admissionplugin")
    go_host = build_go("cipd", "./cmd/cipdhost")
    build_s = time.perf_counter() - started
    plugins = {
        "python (plugwire)": [sys.executable, str(MODES), "admit-all"],
        "go (luci)": [str(go_plugin), "admit-all"],
    }
    rows: list[tuple[int, str, float, float]] = []
    async with CipdHost(service_url="https://cipd.example.com") as host:
        for inflight in levels:
            measured = await measure(host, plugins, count, inflight, rounds)
            rows += [(inflight, name, rate, p50) for name, (rate, p50) in measured.items()]
    go_rows: list[tuple[int, str, float]] = []
    for inflight in levels:
        totals = {name: (0, 0.0) for name in plugins}
        for _ in range(rounds):
            for name, argv in plugins.items():
                checks, seconds = measure_go_host(go_host, argv, count // rounds, inflight)
                totals[name] = (totals[name][0] + checks, totals[name][1] + seconds)
        go_rows += [(inflight, name, n / secs) for name, (n, secs) in totals.items()]

    print(f"\nCIPD admission checks: {count} distinct pins per row, in {rounds} alternating slices")
    print(f"(Go harness build/cache lookup took {build_s:.1f} s)\n")
    header = f"{'host':<16} {'in flight':>9}  {'plugin':<18} {'checks/s':>10} {'p50 ms':>8}"
    print(f"{header} {'py/go':>7}")
    for inflight in levels:
        here = {name: (rate, p50) for i, name, rate, p50 in rows if i == inflight}
        go_rate = here["go (luci)"][0]
        for name, (rate, p50) in here.items():
            ratio = f"{rate / go_rate:.2f}" if name.startswith("python") else "1.00"
            line = f"{'plugwire (py)':<16} {inflight:>9}  {name:<18} {rate:>10.0f} {p50:>8.2f}"
            print(f"{line} {ratio:>7}")
    for inflight in levels:
        rates = {name: rate for i, name, rate in go_rows if i == inflight}
        go_rate = rates["go (luci)"]
        for name, rate in rates.items():
            ratio = f"{rate / go_rate:.2f}" if name.startswith("python") else "1.00"
            line = f"{'luci (go)':<16} {inflight:>9}  {name:<18} {rate:>10.0f} {'-':>8}"
            print(f"{line} {ratio:>7}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pins", type=int, default=10_000)
    parser.add_argument("--inflight", default="1,64")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    levels = [int(x) for x in args.inflight.split(",")]
    anyio.run(main, args.pins, levels, args.rounds, backend="asyncio")
