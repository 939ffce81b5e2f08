"""Benchmark: unary round trips over a unix socket, plugwire ttrpc vs. baselines.

Run: ``.venv/bin/python benchmarks/ttrpc_bench.py [--calls N] [--no-go]``

Each server runs in its own process (so client and server do not share a core),
the client in this one. Rows, all calling ``ttrpc.integration.streaming.Streaming/Echo``
with the same ``EchoPayload``:

- raw echo: asyncio unix-socket echo of length-prefixed frames of the same bytes,
  with a reader task pairing replies to calls (the floor for any Python RPC);
- plugwire ttrpc: plugwire client -> plugwire server (asyncio, and trio);
- grpc.aio: the same servicer bound with plugwire.grpc.binding, grpc.aio client;
- Go ttrpc client -> plugwire server (containerd/ttrpc, built from tests/interop/ttrpc).

For 1 and 64 calls in flight it prints p50/p99 latency and calls/s, then the
ratios against the raw echo floor and against grpc.aio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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
sys.path.insert(0, str(ROOT / "tests"))

MSG_SEQ = 1
MSG_TEXT = "hello ttrpc"


# ---- servers (run in a child process) --------------------------------------------


async def _serve_raw(path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                writer.write(head + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_unix_server(handle, path)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


async def _serve_ttrpc(path: str) -> None:
    import anyio

    from plugwire.ttrpc import Server
    from plugwire.ttrpc.example import SERVICE, StreamingServicer

    server = Server()
    server.add_servicer(StreamingServicer(), SERVICE)
    async with server.listen(f"unix:{path}"):
        print("READY", flush=True)
        await anyio.sleep_forever()


async def _serve_grpc(path: str) -> None:
    import grpc

    from plugwire.grpc.binding import add_servicer
    from plugwire.ttrpc.example import SERVICE, StreamingServicer

    server = grpc.aio.server()
    add_servicer(server, StreamingServicer(), SERVICE)
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    print("READY", flush=True)
    await server.wait_for_termination()


def serve(kind: str, path: str, backend: str) -> None:
    if kind == "raw":
        asyncio.run(_serve_raw(path))
    elif kind == "ttrpc":
        import anyio

        anyio.run(_serve_ttrpc, path, backend=backend)
    elif kind == "grpc":
        asyncio.run(_serve_grpc(path))


class ServerProcess:
    def __init__(self, kind: str, path: str, backend: str = "asyncio") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, path, "--backend", backend],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(b"READY"):
            raise RuntimeError(f"{kind} server did not start: {line!r}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


# ---- clients ----------------------------------------------------------------------

WARMUP = 200


def _cpu_now(server_pid: int) -> float:
    """CPU seconds used so far by this process, its reaped children (the Go client)
    and the server process ``server_pid``."""
    with open(f"/proc/{server_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime + server


async def _drive(
    call: Callable[[], Awaitable[object]], calls: int, concurrency: int
) -> dict[str, float]:
    for _ in range(WARMUP):
        await call()
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    return await _timed(worker, concurrency, latencies)


async def _timed(
    worker: Callable[[], Awaitable[None]], concurrency: int, latencies: list[float]
) -> dict[str, float]:
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return _stats(latencies, elapsed)


def _stats(latencies: list[float], elapsed: float) -> dict[str, float]:
    latencies.sort()
    return {
        "p50_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "calls_per_s": len(latencies) / elapsed,
    }


async def bench_raw(path: str, calls: int, concurrency: int) -> dict[str, float]:
    from plugwire.ttrpc.example import pb

    reader, writer = await asyncio.open_unix_connection(path)
    payload = pb.EchoPayload(seq=MSG_SEQ, msg=MSG_TEXT).SerializeToString()
    frame = struct.pack(">I", len(payload)) + payload
    waiters: deque[asyncio.Future[bytes]] = deque()

    async def read_loop() -> None:
        while True:
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">I", head)[0])
            waiters.popleft().set_result(body)

    task = asyncio.create_task(read_loop())
    loop = asyncio.get_running_loop()

    async def call() -> object:
        fut: asyncio.Future[bytes] = loop.create_future()
        waiters.append(fut)
        writer.write(frame)
        return pb.EchoPayload.FromString(await fut)

    try:
        return await _drive(call, calls, concurrency)
    finally:
        task.cancel()
        writer.close()


async def bench_ttrpc(path: str, calls: int, concurrency: int) -> dict[str, float]:
    from plugwire.ttrpc import Client, ServiceClient
    from plugwire.ttrpc.example import SERVICE, pb

    async with await Client.connect(f"unix:{path}") as client:
        stub = ServiceClient(client, SERVICE)
        req = pb.EchoPayload(seq=MSG_SEQ, msg=MSG_TEXT)

        async def call() -> object:
            return await stub.Echo(req)

        return await _drive(call, calls, concurrency)


def bench_ttrpc_trio(path: str, calls: int, concurrency: int) -> dict[str, float]:
    import anyio

    from plugwire.ttrpc import Client, ServiceClient
    from plugwire.ttrpc.example import SERVICE, pb

    async def main() -> dict[str, float]:
        async with await Client.connect(f"unix:{path}") as client:
            stub = ServiceClient(client, SERVICE)
            req = pb.EchoPayload(seq=MSG_SEQ, msg=MSG_TEXT)
            for _ in range(WARMUP):
                await stub.Echo(req)
            latencies: list[float] = []
            remaining = calls

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    t = time.perf_counter()
                    await stub.Echo(req)
                    latencies.append(time.perf_counter() - t)

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker)
            return _stats(latencies, time.perf_counter() - start)

    return anyio.run(main, backend="trio")


async def bench_grpc(path: str, calls: int, concurrency: int) -> dict[str, float]:
    import grpc

    from plugwire.ttrpc.example import pb

    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        echo = channel.unary_unary(
            "/ttrpc.integration.streaming.Streaming/Echo",
            request_serializer=pb.EchoPayload.SerializeToString,
            response_deserializer=pb.EchoPayload.FromString,
        )
        req = pb.EchoPayload(seq=MSG_SEQ, msg=MSG_TEXT)

        async def call() -> object:
            return await echo(req)

        return await _drive(call, calls, concurrency)


def bench_go(binary: Path, path: str, calls: int, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        [str(binary), "bench", path, str(calls), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per row at 1 in flight")
    parser.add_argument("--rounds", type=int, default=3, help="median over this many rounds")
    parser.add_argument("--no-go", action="store_true", help="skip the Go client row")
    parser.add_argument("--no-trio", action="store_true", help="skip the trio client row")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="asyncio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], args.backend)
        return

    go_binary: Path | None = None
    if not args.no_go:
        try:
            from support.gobuild import build_go

            go_binary = build_go("ttrpc", "./cmd/ttrpcpeer")
        except Exception as exc:  # Go missing: report and go on without that row
            print(f"(Go client row skipped: {exc})", file=sys.stderr)

    tmp = tempfile.mkdtemp(prefix="ttrpc-bench-")
    servers = {
        kind: ServerProcess(kind, os.path.join(tmp, f"{kind}.sock"))
        for kind in ("raw", "ttrpc", "grpc")
    }
    clients: list[tuple[str, str, Callable[[str, int, int], dict[str, float]]]] = [
        ("raw asyncio echo (floor)", "raw", lambda p, n, c: asyncio.run(bench_raw(p, n, c))),
        ("plugwire ttrpc (asyncio)", "ttrpc", lambda p, n, c: asyncio.run(bench_ttrpc(p, n, c))),
    ]
    if not args.no_trio:
        clients.append(("plugwire ttrpc (trio)", "ttrpc", bench_ttrpc_trio))
    clients.append(
        ("grpc.aio (same proto)", "grpc", lambda p, n, c: asyncio.run(bench_grpc(p, n, c)))
    )
    if go_binary is not None:
        binary = go_binary
        clients.append(
            ("Go ttrpc client -> plugwire", "ttrpc", lambda p, n, c: bench_go(binary, p, n, c))
        )
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        # Rounds interleave the rows so that a burst of load on a shared machine
        # does not land on one row only; each figure is the median over rounds.
        for round_ in range(args.rounds):
            for concurrency in (1, 64):
                calls = args.calls if concurrency == 1 else args.calls * 4
                for name, kind, run in clients:
                    server_pid = servers[kind].proc.pid
                    cpu0 = _cpu_now(server_pid)
                    r = run(os.path.join(tmp, f"{kind}.sock"), calls, concurrency)
                    r["cpu_us"] = (_cpu_now(server_pid) - cpu0) / (calls + WARMUP) * 1e6
                    samples.setdefault((name, concurrency), []).append(r)
                    print(
                        f"  round {round_ + 1} {name:30s} in-flight {concurrency:3d}:"
                        f" p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f} us"
                        f"  {r['calls_per_s']:9.0f} calls/s  cpu {r['cpu_us']:6.1f} us/call",
                        file=sys.stderr,
                    )
    finally:
        for server in servers.values():
            server.close()
    rows = {
        key: {
            m: statistics.median(x[m] for x in runs)
            for m in ("p50_us", "p99_us", "calls_per_s", "cpu_us")
        }
        for key, runs in samples.items()
    }
    load = os.getloadavg()[0]

    print()
    header = (
        f"{'client -> server':30s} {'inflight':>8s} {'p50 us':>9s} {'p99 us':>9s} {'calls/s':>9s}"
        f" {'cpu us':>7s} {'p50/floor':>9s} {'rate/floor':>10s} {'cpu/floor':>9s}"
        f" {'p50/grpc':>9s} {'rate/grpc':>9s}"
    )
    print(header)
    print("-" * len(header))
    for concurrency in (1, 64):
        floor = rows[("raw asyncio echo (floor)", concurrency)]
        grpc_row = rows[("grpc.aio (same proto)", concurrency)]
        for (name, c), r in rows.items():
            if c != concurrency:
                continue
            print(
                f"{name:30s} {c:8d} {r['p50_us']:9.1f} {r['p99_us']:9.1f} {r['calls_per_s']:9.0f}"
                f" {r['cpu_us']:7.1f} {r['p50_us'] / floor['p50_us']:9.2f}"
                f" {r['calls_per_s'] / floor['calls_per_s']:10.2f}"
                f" {r['cpu_us'] / floor['cpu_us']:9.2f}"
                f" {r['p50_us'] / grpc_row['p50_us']:9.2f}"
                f" {r['calls_per_s'] / grpc_row['calls_per_s']:9.2f}"
            )
    print(
        "\ncpu us: CPU time per call of client and server processes together (independent"
        " of other load on the machine, unlike latency and rate).\n"
        "p50/floor: latency relative to the raw echo (target <= 2); rate/grpc: throughput"
        f" relative to grpc.aio (target > 1). Medians of {args.rounds} rounds;"
        f" 1-min load average at the end: {load:.1f} on {os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
