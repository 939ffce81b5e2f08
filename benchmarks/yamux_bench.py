"""Benchmark plugwire's yamux against the raw socket it runs on (the baseline).

    uv run python benchmarks/yamux_bench.py [--backend asyncio|trio|both] [--mib 64]

Measures, on a connected unix socket pair, in one run:
* bulk throughput one way: raw socket vs one yamux stream vs 8 concurrent streams;
* small-message round trips (64 bytes, echo): raw socket vs a yamux stream;
* the yamux ping round trip.
Prints a table with each figure and its ratio to the raw-socket baseline.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from plugwire.grpc import yamux

CHUNK = 256 * 1024
QUIET = yamux.YamuxConfig(enable_keepalive=False)


async def socket_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (
        await anyio.abc.SocketStream.from_socket(a),
        await anyio.abc.SocketStream.from_socket(b),
    )


async def pump(tx: anyio.abc.ByteStream, rx: anyio.abc.ByteStream, total: int) -> float:
    block = b"\xab" * CHUNK
    start = time.perf_counter()

    async def send() -> None:
        sent = 0
        while sent < total:
            await tx.send(block)
            sent += len(block)

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        got = 0
        while got < total:
            got += len(await rx.receive(CHUNK))
    return time.perf_counter() - start


async def echo_rtts(tx: anyio.abc.ByteStream, rx: anyio.abc.ByteStream, rounds: int) -> list[float]:
    async def echo() -> None:
        for _ in range(rounds):
            await rx.send(await rx.receive())

    samples = []
    message = b"m" * 64
    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        for _ in range(rounds):
            start = time.perf_counter()
            await tx.send(message)
            await tx.receive()
            samples.append(time.perf_counter() - start)
    return samples


async def with_yamux(body: Callable[[yamux.Session, yamux.Session], Awaitable[object]]) -> object:
    a, b = await socket_pair()
    async with yamux.client(a, QUIET) as client, yamux.server(b, QUIET) as server:
        return await body(client, server)


async def run(backend: str, mib: int, rounds: int) -> list[tuple[str, float, str, float]]:
    total = mib * 1024 * 1024
    rows: list[tuple[str, float, str, float]] = []

    a, b = await socket_pair()
    raw_time = await pump(a, b, total)
    await a.aclose()
    await b.aclose()
    raw_mbs = total / raw_time / 1e6
    rows.append((f"{backend}: bulk raw socket", raw_mbs, "MB/s", 1.0))

    async def one_stream(client: yamux.Session, server: yamux.Session) -> float:
        tx = await client.open_stream()
        rx = await server.accept_stream()
        return await pump(tx, rx, total)

    t = await with_yamux(one_stream)
    assert isinstance(t, float)
    rows.append((f"{backend}: bulk yamux, 1 stream", total / t / 1e6, "MB/s", raw_time / t))

    async def eight_streams(client: yamux.Session, server: yamux.Session) -> float:
        pairs = []
        for _ in range(8):
            tx = await client.open_stream()
            pairs.append((tx, await server.accept_stream()))
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for tx, rx in pairs:
                tg.start_soon(pump, tx, rx, total // 8)
        return time.perf_counter() - start

    t = await with_yamux(eight_streams)
    assert isinstance(t, float)
    rows.append((f"{backend}: bulk yamux, 8 streams", total / t / 1e6, "MB/s", raw_time / t))

    a, b = await socket_pair()
    raw_rtts = await echo_rtts(a, b, rounds)
    await a.aclose()
    await b.aclose()
    raw_p50 = statistics.median(raw_rtts) * 1e6
    rows.append((f"{backend}: 64 B echo p50, raw socket", raw_p50, "us", 1.0))

    async def stream_rtts(client: yamux.Session, server: yamux.Session) -> list[float]:
        tx = await client.open_stream()
        await tx.send(b"x")
        rx = await server.accept_stream()
        await rx.receive()
        return await echo_rtts(tx, rx, rounds)

    rtts = await with_yamux(stream_rtts)
    assert isinstance(rtts, list)
    p50 = statistics.median(rtts) * 1e6
    rows.append((f"{backend}: 64 B echo p50, yamux", p50, "us", p50 / raw_p50))
    p99 = sorted(rtts)[int(len(rtts) * 0.99)] * 1e6
    raw_p99 = sorted(raw_rtts)[int(len(raw_rtts) * 0.99)] * 1e6
    rows.append((f"{backend}: 64 B echo p99, yamux", p99, "us", p99 / raw_p99))

    async def pings(client: yamux.Session, server: yamux.Session) -> float:
        return statistics.median([await client.ping() for _ in range(rounds // 4)])

    ping = await with_yamux(pings)
    assert isinstance(ping, float)
    rows.append((f"{backend}: yamux ping p50", ping * 1e6, "us", ping * 1e6 / raw_p50))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--mib", type=int, default=64, help="bulk transfer size")
    parser.add_argument("--rounds", type=int, default=2000, help="echo round trips")
    args = parser.parse_args()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        rows += anyio.run(run, backend, args.mib, args.rounds, backend=backend)
    print(f"{'case':44} {'value':>10} {'unit':5} {'vs raw socket':>14}")
    for name, value, unit, ratio in rows:
        note = "x time" if unit == "us" else "x speed"
        print(f"{name:44} {value:10.1f} {unit:5} {ratio:8.2f} {note}")


if __name__ == "__main__":
    main()
