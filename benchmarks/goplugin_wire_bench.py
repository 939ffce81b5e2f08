"""go-plugin wire negotiation: the same plugwire host/plugin pair over ttrpc and gRPC. Not a test.

Run: ``.venv/bin/python benchmarks/goplugin_wire_bench.py [--quick] [--rounds N]``

A plugwire ``PluginClient`` launches the plugwire KV plugin of
docs/examples/goplugin/wires (one servicer object, served on whichever wire the
handshake picks) and calls ``KV.Get`` (a 16-byte value) through the dispensed stub:

* ttrpc pair -- the default ``wires=("ttrpc", "grpc")``: negotiated ttrpc
* grpc pair  -- ``wires=("grpc",)``: plain go-plugin gRPC (grpc.aio both sides)
* bare ttrpc -- the same servicer on a bare ``plugwire.ttrpc.Server`` in its own process,
  called through ``plugwire.ttrpc.ServiceClient`` (no go-plugin around it: shows what
  the go-plugin layer adds over ttrpc itself)
* raw echo   -- an asyncio unix-socket echo of the same request bytes, length-prefixed,
  server in its own process (the floor: no RPC framework at all)

``cpu us`` is the CPU time per call of both processes together (from ``/proc``); unlike
wall-clock latency it hardly depends on what else the machine runs.

p50/p99 at 1 call in flight and calls/s at 64 in flight, all in one run; each
configuration is measured ``--rounds`` times, interleaved, each measurement in a fresh
client process (grpc.aio, once used, keeps threads running in a process), and the
median round is reported. Targets (issue 14): ttrpc p50 <= 0.3x grpc pair and <= 1.5x raw echo at
1 in flight; ttrpc calls/s at 64 in flight >= 3x grpc pair.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = [sys.executable, str(ROOT / "docs" / "examples" / "goplugin" / "wires" / "plugin.py")]
QUICK = "--quick" in sys.argv
N = {1: 1000 if QUICK else 3000, 64: 3200 if QUICK else 12800}
WARMUP = 300
VALUE = b"0123456789abcdef"
Row = dict[str, float]


# ---- the servers (child processes); the raw echo is plugwire bench ttrpc's floor -------


async def _serve_ttrpc(path: str) -> None:
    sys.path.insert(0, str(ROOT / "docs" / "examples" / "goplugin" / "wires"))
    from plugin import KV, SERVICE  # the docs example's servicer

    from plugwire.ttrpc import Server

    server = Server()
    server.add_servicer(KV(), SERVICE)
    async with server.listen(f"unix:{path}"):
        print("READY", flush=True)
        await asyncio.Event().wait()


def _proc_cpu(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- measuring ------------------------------------------------------------------------


async def measure(call: Callable[[], Awaitable[object]], conc: int, peer_pid: int) -> Row:
    for _ in range(WARMUP):
        await call()
    per = N[conc] // conc
    lat: list[float] = []

    async def worker() -> None:
        for _ in range(per):
            t = time.perf_counter()
            await call()
            lat.append(time.perf_counter() - t)

    cpu0 = time.process_time()
    peer0 = _proc_cpu(peer_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0 + _proc_cpu(peer_pid) - peer0
    lat.sort()
    return {
        "p50_us": statistics.median(lat) * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        "calls_per_s": len(lat) / elapsed,
        "cpu_us": cpu / len(lat) * 1e6,
    }


async def bench_pair(wires: tuple[str, ...], conc: int) -> Row:
    from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin
    from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc

    service = kv_pb2.DESCRIPTOR.services_by_name["KV"]
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub, service=service)},
        cmd=PLUGIN,
        wires=wires,
        start_timeout=60,
    )
    async with PluginClient(config) as client:
        assert client.protocol == wires[0], (client.protocol, wires)
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="bench", value=VALUE))
        request = kv_pb2.GetRequest(key="bench")

        async def call() -> object:
            reply = await kv.Get(request)
            assert reply.value == VALUE
            return reply

        assert client.pid is not None
        return await measure(call, conc, client.pid)


async def bench_ttrpc(path: str, pid: int, conc: int) -> Row:
    from plugwire.grpc.goplugin.examples import kv_pb2
    from plugwire.ttrpc import Client, ServiceClient

    service = kv_pb2.DESCRIPTOR.services_by_name["KV"]
    async with await Client.connect(f"unix:{path}") as client:
        kv = ServiceClient(client, service)
        await kv.Put(kv_pb2.PutRequest(key="bench", value=VALUE))
        request = kv_pb2.GetRequest(key="bench")

        async def call() -> object:
            reply = await kv.Get(request)
            assert reply.value == VALUE
            return reply

        return await measure(call, conc, pid)


async def bench_raw(path: str, pid: int, conc: int) -> Row:
    from plugwire.grpc.goplugin.examples import kv_pb2

    reader, writer = await asyncio.open_unix_connection(path)
    payload = kv_pb2.GetRequest(key="bench").SerializeToString()
    frame = struct.pack(">I", len(payload)) + payload
    waiters: deque[asyncio.Future[bytes]] = deque()
    loop = asyncio.get_running_loop()

    async def read_loop() -> None:
        while True:
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">I", head)[0])
            waiters.popleft().set_result(body)

    task = asyncio.create_task(read_loop())

    async def call() -> object:
        fut: asyncio.Future[bytes] = loop.create_future()
        waiters.append(fut)
        writer.write(frame)
        return kv_pb2.GetRequest.FromString(await fut)

    try:
        return await measure(call, conc, pid)
    finally:
        task.cancel()
        writer.close()


# ---- main -------------------------------------------------------------------------------


def _median_row(rows: list[Row]) -> Row:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve-raw":
        from plugwire.ttrpc._bench_peer import _serve_raw

        asyncio.run(_serve_raw(sys.argv[2]))
        return
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve-ttrpc":
        asyncio.run(_serve_ttrpc(sys.argv[2]))
        return
    if len(sys.argv) >= 6 and sys.argv[1] == "--one":
        name, conc, where, pid = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        if name == "raw echo":
            row = asyncio.run(bench_raw(where, pid, conc))
        elif name == "bare ttrpc":
            row = asyncio.run(bench_ttrpc(where, pid, conc))
        else:
            wires = ("ttrpc",) if name == "ttrpc pair" else ("grpc",)
            row = asyncio.run(bench_pair(wires, conc))
        print(json.dumps(row), flush=True)
        return
    rounds = 3
    if "--rounds" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
    tmp = tempfile.mkdtemp(prefix="wirebench")
    path = os.path.join(tmp, "echo.sock")
    tpath = os.path.join(tmp, "ttrpc.sock")
    servers = []
    for flag, where in (("--serve-raw", path), ("--serve-ttrpc", tpath)):
        child = subprocess.Popen([sys.executable, __file__, flag, where], stdout=subprocess.PIPE)
        servers.append(child)
        assert child.stdout is not None
        if not child.stdout.readline().startswith(b"READY"):
            raise SystemExit(f"{flag} server did not start")
    echo, bare = servers
    names = ("ttrpc pair", "grpc pair", "bare ttrpc", "raw echo")
    children = {"raw echo": (path, echo.pid), "bare ttrpc": (tpath, bare.pid)}
    results: dict[tuple[str, int], list[Row]] = {}
    try:
        for r in range(rounds):
            for conc in (1, 64):
                for name in names:
                    where, pid = children.get(name, ("-", 0))
                    argv = [sys.executable, __file__, "--one", name, str(conc), where, str(pid)]
                    if QUICK:
                        argv.append("--quick")
                    done = subprocess.run(argv, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        raise SystemExit(f"{name} x{conc} failed: {done.stderr[-2000:]}")
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    results.setdefault((name, conc), []).append(row)
                    print(
                        f"round {r + 1} {name:10s} x{conc:<2d} p50 {row['p50_us']:8.1f} us"
                        f"  calls/s {row['calls_per_s']:8.0f}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for child in servers:
            child.terminate()
            child.wait(5)
        if not os.listdir(tmp):
            os.rmdir(tmp)

    table = {key: _median_row(rows) for key, rows in results.items()}
    print(f"\nKV Get, plugwire host <-> plugwire plugin, median of {rounds} rounds")
    print(
        f"{'configuration':14s} {'inflight':>8s} {'p50 us':>9s} {'p99 us':>9s}"
        f" {'calls/s':>9s} {'cpu us':>7s}"
    )
    for conc in (1, 64):
        for name in names:
            row = table[(name, conc)]
            print(
                f"{name:14s} {conc:8d} {row['p50_us']:9.1f} {row['p99_us']:9.1f}"
                f" {row['calls_per_s']:9.0f} {row['cpu_us']:7.1f}"
            )
    t1, g1, b1, r1 = (table[(n, 1)] for n in names)
    t64, g64, b64, r64 = (table[(n, 64)] for n in names)
    checks = [
        ("ttrpc p50 / grpc p50 (1 in flight)", t1["p50_us"] / g1["p50_us"], "<=", 0.3),
        ("ttrpc p50 / raw echo p50 (1 in flight)", t1["p50_us"] / r1["p50_us"], "<=", 1.5),
        ("ttrpc calls/s / grpc calls/s (64)", t64["calls_per_s"] / g64["calls_per_s"], ">=", 3.0),
    ]
    print("\nratio                                       value  target  verdict")
    for label, value, op, target in checks:
        ok = value <= target if op == "<=" else value >= target
        print(f"{label:42s} {value:6.2f}  {op}{target:<5}  {'met' if ok else 'MISSED'}")
    print(
        f"(also: ttrpc pair p50 / bare ttrpc p50 at 1: {t1['p50_us'] / b1['p50_us']:.2f}; "
        f"cpu per call ttrpc pair / bare ttrpc / raw echo at 1: {t1['cpu_us']:.0f} / "
        f"{b1['cpu_us']:.0f} / {r1['cpu_us']:.0f} us; "
        f"ttrpc pair calls/s / bare ttrpc at 64: {t64['calls_per_s'] / b64['calls_per_s']:.2f};\n"
        f" ttrpc calls/s / raw echo calls/s at 64: "
        f"{t64['calls_per_s'] / r64['calls_per_s']:.2f}; "
        f"ttrpc p50 / grpc p50 at 64: {t64['p50_us'] / g64['p50_us']:.2f})"
    )


if __name__ == "__main__":
    main()
