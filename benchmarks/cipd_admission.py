"""Benchmark: CIPD admission checks per second, Python plugin vs luci's Go plugin.

Run: ``.venv/bin/python benchmarks/cipd_admission.py [--pins 10000] [--inflight 1,64]``

One run, one table. The same plugwire host (:class:`plugwire.grpc.cipd.CipdHost`)
checks N distinct pins (each a new admission: no cache hits) through

- the plugwire Python plugin: ``tests/cipd/plugins/modes.py admit-all``
  (:func:`plugwire.grpc.cipd.plugin.run`);
- luci's Go plugin library: ``tests/interop/cipd/cmd/admissionplugin admit-all``
  (``plugins/admission.Run`` from go.chromium.org/luci, built via support.gobuild);

with 1 check in flight (check, wait, next) and with 64 in flight. Each row uses a
fresh plugin process, warmed up with 200 checks first. The last column is the
Python plugin's throughput as a fraction of the Go plugin's.

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
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.gobuild import build_go  # noqa: E402

from plugwire.grpc.cipd import CipdHost, Pin  # noqa: E402

MODES = ROOT / "tests" / "cipd" / "plugins" / "modes.py"


def pins(prefix: str, count: int) -> list[Pin]:
    out = []
    for i in range(count):
        digest = hashlib.sha256(f"{prefix}{i}".encode()).digest()
        iid = base64.urlsafe_b64encode(digest + b"\x02").rstrip(b"=").decode()
        out.append(Pin(f"bench/{prefix}/pkg{i % 100}", iid))
    return out


async def measure(
    host: CipdHost, name: str, argv: list[str], count: int, inflight: int
) -> tuple[float, float]:
    """Checks/s and p50 latency (ms) for ``count`` distinct pins, ``inflight`` at a time."""
    plugin = host.admission_plugin(argv, name=name)
    tag = f"{name}-{inflight}-{time.monotonic_ns()}"
    for promise in plugin.prefetch(pins(f"warm-{tag}", 200)):
        await promise.wait()
    todo = iter(pins(f"run-{tag}", count))
    latencies: list[float] = []

    async def worker() -> None:
        for pin in todo:
            t0 = time.perf_counter()
            await plugin.check_admission(pin).wait()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(inflight):
            tg.start_soon(worker)
    elapsed = time.perf_counter() - start
    await plugin.aclose()
    assert len(latencies) == count
    return count / elapsed, statistics.median(latencies) * 1000


def measure_go_host(host: Path, argv: list[str], count: int, inflight: int) -> float:
    """Checks/s of luci's Go host (cipdhost bench mode) driving ``argv``."""
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
    return float(result["checks"]) / float(result["seconds"])


async def main(count: int, levels: list[int]) -> None:
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
            for name, argv in plugins.items():
                label = name.split()[0]
                rate, p50 = await measure(host, label, argv, count, inflight)
                rows.append((inflight, name, rate, p50))
    go_rows: list[tuple[int, str, float]] = []
    for inflight in levels:
        for name, argv in plugins.items():
            go_rows.append((inflight, name, measure_go_host(go_host, argv, count, inflight)))

    print(f"\nCIPD admission checks: {count} distinct pins per row")
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
    args = parser.parse_args()
    anyio.run(main, args.pins, [int(x) for x in args.inflight.split(",")], backend="asyncio")
