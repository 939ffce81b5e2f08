"""Benchmark: one CreateContainer hook round trip through an NRI runtime, one plugin.

Run: ``.venv/bin/python benchmarks/nri_bench.py [--calls N]``

Four combinations, each plugin in its own process, each answering CreateContainer
with the same adjustment (one env var):

=====================  ===================================================
runtime                plugin
=====================  ===================================================
plugwire Runtime       plugwire Stub (Python)
plugwire Runtime       Go plugin on containerd/nri's pkg/stub
Go adaptation          plugwire Stub (Python)
Go adaptation          Go plugin on containerd/nri's pkg/stub (baseline)
=====================  ===================================================

The Go adaptation is tests/interop/nri/cmd/nriruntime, which times the calls itself
(so its stdin/stdout command channel is not measured). It prints p50/p99 latency and
calls/s per row, then ratios against the all-Go baseline and, per runtime, of the
Python plugin against the Go plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

Starter = Callable[[Path], "subprocess.Popen[bytes]"]

POD: dict[str, Any] = {"id": "pod0", "name": "pod0", "namespace": "default"}
CONTAINER: dict[str, Any] = {"id": "c1", "pod_sandbox_id": "pod0", "name": "c1", "env": ["A=1"]}


def plugin_main(socket_path: str) -> None:
    """The Python plugin (run in a child process)."""

    from plugwire.ttrpc.nri import Adjustment, Stub
    from plugwire.ttrpc.nri.api import pb

    class Bench:
        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> Adjustment:
            return Adjustment().add_env("BENCH", "1")

    Stub(Bench(), name="bench", idx="10", socket_path=socket_path).serve()


def start_python_plugin(sock: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--plugin", str(sock)])


def start_go_plugin(binary: Path, sock: Path) -> subprocess.Popen[bytes]:
    argv = [str(binary), "-socket", str(sock), "-idx", "10", "-name", "bench", "-env", "BENCH=1"]
    return subprocess.Popen(argv, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_plugwire_runtime(sock: Path, start_plugin: Starter, calls: int) -> list[float]:
    import anyio

    from plugwire.ttrpc.nri import Runtime
    from plugwire.ttrpc.nri.api import pb

    async def main() -> list[float]:
        async with Runtime("bench", "0.1", socket_path=sock) as rt:
            proc = start_plugin(sock)
            try:
                await rt.wait_for_plugins(1, timeout=20)
                pod, ctr = pb.PodSandbox(**POD), pb.Container(**CONTAINER)
                for _ in range(min(200, calls // 10)):  # warm-up
                    await rt.create_container(pod, ctr)
                out = []
                for _ in range(calls):
                    t0 = time.perf_counter_ns()
                    rpl = await rt.create_container(pod, ctr)
                    out.append(time.perf_counter_ns() - t0)
                assert rpl.adjust.env[0].key == "BENCH"
                return [x / 1000 for x in out]
            finally:
                stop(proc)

    return anyio.run(main)


def bench_go_runtime(
    runtime_bin: Path, sock: Path, start_plugin: Starter, calls: int
) -> list[float]:
    rt = subprocess.Popen(
        [str(runtime_bin)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert rt.stdin is not None and rt.stdout is not None

    def cmd(op: str, **kw: object) -> dict[str, object]:
        assert rt.stdin is not None and rt.stdout is not None
        rt.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        rt.stdin.flush()
        reply: dict[str, object] = json.loads(rt.stdout.readline())
        if not reply["ok"]:
            raise RuntimeError(f"{op}: {reply.get('error')}")
        return reply

    proc = None
    try:
        cmd("start", socket=str(sock))
        proc = start_plugin(sock)
        cmd("wait_plugins", count=1, timeout=20)
        request = {"pod": POD, "container": CONTAINER}
        cmd("bench_create", request=request, calls=min(200, calls // 10))
        reply = cmd("bench_create", request=request, calls=calls)
        result: Any = reply["result"]
        return [int(v) / 1000 for v in result["value"]]
    finally:
        if proc is not None:
            stop(proc)
        cmd("stop")
        rt.wait(5)


def summary(lat: list[float]) -> tuple[float, float, float]:
    lat = sorted(lat)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return p50, p99, 1e6 / statistics.mean(lat)


def main() -> None:
    parser = argparse.ArgumentParser(description="NRI CreateContainer round-trip benchmark")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--plugin", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plugin:
        plugin_main(args.plugin)
        return

    from support.gobuild import build_go

    runtime_bin = build_go("nri", "./cmd/nriruntime")
    plugin_bin = build_go("nri", "./cmd/nriplugin")

    def go_plugin(sock: Path) -> subprocess.Popen[bytes]:
        return start_go_plugin(plugin_bin, sock)

    rows: dict[tuple[str, str], tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nri-bench-", dir="/tmp") as tmp:
        for n, (runtime, plugin) in enumerate(
            [("plugwire", "python"), ("plugwire", "go"), ("go", "python"), ("go", "go")]
        ):
            sock = Path(tmp) / f"{n}" / "nri.sock"
            os.makedirs(sock.parent, mode=0o700)
            starter = start_python_plugin if plugin == "python" else go_plugin
            if runtime == "plugwire":
                lat = bench_plugwire_runtime(sock, starter, args.calls)
            else:
                lat = bench_go_runtime(runtime_bin, sock, starter, args.calls)
            rows[(runtime, plugin)] = summary(lat)

    print(f"\nNRI CreateContainer round trip, one plugin, {args.calls} sequential calls\n")
    header = f"{'runtime':<16}{'plugin':<14}{'p50 µs':>10}{'p99 µs':>10}{'calls/s':>10}"
    print(header)
    print("-" * len(header))
    names = {"plugwire": "plugwire", "go": "Go adaptation", "python": "plugwire Stub"}
    for (runtime, plugin), (p50, p99, rate) in rows.items():
        plugin_name = names[plugin] if plugin == "python" else "Go stub"
        print(f"{names[runtime]:<16}{plugin_name:<14}{p50:>10.1f}{p99:>10.1f}{rate:>10.0f}")
    base = rows[("go", "go")][0]
    print("\nratios of p50 latency")
    for (runtime, plugin), (p50, _, _) in rows.items():
        print(f"  {runtime:>8} runtime + {plugin:<6} plugin vs all-Go: {p50 / base:5.2f}x")
    for runtime in ("plugwire", "go"):
        ratio = rows[(runtime, "python")][0] / rows[(runtime, "go")][0]
        print(f"  Python plugin vs Go plugin on the {runtime} runtime: {ratio:5.2f}x")
    ratio = rows[("plugwire", "go")][0] / rows[("go", "go")][0]
    print(f"  plugwire runtime vs Go adaptation (Go plugin): {ratio:5.2f}x")


if __name__ == "__main__":
    main()
