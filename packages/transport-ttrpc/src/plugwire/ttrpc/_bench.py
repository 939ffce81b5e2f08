"""``plugwire bench ttrpc``: unary ttrpc Echo round trips over a unix socket.

Every row calls ``ttrpc.integration.streaming.Streaming/Echo`` with the same
``EchoPayload``, the server in its own process: containerd/ttrpc's Go client and
server (tests/interop/ttrpc/cmd/ttrpcpeer), plugwire's, each pairing, and the floor:
an asyncio unix-socket echo of length-prefixed frames of the same bytes with a reader
task pairing replies to calls (what any Python RPC over one socket costs at least).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from plugwire.core.bench import BenchContext, CallContender, Contender, Level, Suite, run_to_end

from .client import Client
from .example import SERVICE, pb
from .service import ServiceClient

__all__ = ["SUITE", "raw_call", "raw_server"]

PEER = [sys.executable, "-m", "plugwire.ttrpc._bench_peer"]
_serial = itertools.count()


def _request() -> Any:
    return pb.EchoPayload(seq=1, msg="hello ttrpc")


async def _server(ctx: BenchContext, kind: str, name: str) -> tuple[Path, int]:
    """Start a server (raw, ttrpc or go); its socket and pid."""
    path = ctx.path(f"{name}-{next(_serial)}.sock")
    if kind == "go":
        argv = [str(await ctx.go("ttrpc", "./cmd/ttrpcpeer")), "server", str(path)]
    else:
        argv = [*PEER, kind, str(path)]
    proc = await ctx.spawn(argv, name=name, ready="READY")
    return path, proc.pid


async def raw_server(ctx: BenchContext, name: str) -> tuple[Path, int]:
    """Start the raw asyncio echo server (the floor); its socket and pid."""
    return await _server(ctx, "raw", name)


async def raw_call(
    ctx: BenchContext, path: Path, payload: bytes, decode: Callable[[bytes], Any]
) -> Callable[[], Awaitable[Any]]:
    """A call of the raw echo at ``path``: one length-prefixed ``payload`` out, the
    echo back to a reader task that pairs it with its caller, decoded with ``decode``
    (the least any Python RPC over one socket does). Also the floor of
    ``plugwire bench goplugin``."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    frame = struct.pack(">I", len(payload)) + payload
    waiters: deque[asyncio.Future[bytes]] = deque()

    async def read_loop() -> None:
        while True:
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">I", head)[0])
            waiters.popleft().set_result(body)

    task = asyncio.create_task(read_loop())

    async def stop() -> None:
        task.cancel()
        writer.close()

    ctx.stack.push_async_callback(stop)
    loop = asyncio.get_running_loop()

    async def call() -> object:
        fut: asyncio.Future[bytes] = loop.create_future()
        waiters.append(fut)
        writer.write(frame)
        return decode(await fut)

    return call


async def _raw_call(ctx: BenchContext, path: Path) -> Any:
    return await raw_call(ctx, path, _request().SerializeToString(), pb.EchoPayload.FromString)


async def _ttrpc_call(ctx: BenchContext, path: Path) -> Any:
    client = await ctx.stack.enter_async_context(await Client.connect(f"unix:{path}"))
    stub = ServiceClient(client, SERVICE)
    req = _request()
    return lambda: stub.Echo(req)


class PythonClient(CallContender):
    """A client in this process (raw echo or plugwire ttrpc) against ``server``."""

    def __init__(self, name: str, server: str, raw: bool = False) -> None:
        super().__init__(name)
        self.server = server
        self.raw = raw

    async def _connect(self, ctx: BenchContext, tag: str) -> None:
        path, pid = await _server(ctx, self.server, tag)
        self.call = await (_raw_call if self.raw else _ttrpc_call)(ctx, path)
        self._pids = [pid]

    async def start(self, ctx: BenchContext) -> None:
        await self._connect(ctx, self.server + ("-raw" if self.raw else ""))

    async def cold_start(self, ctx: BenchContext) -> float | None:
        keep = self.call, self._pids
        t0 = time.perf_counter()
        await self._connect(ctx, f"cold-{self.server}")
        assert self.call is not None
        await self.call()
        seconds = time.perf_counter() - t0
        self.call, self._pids = keep
        return seconds


class GoClient(Contender):
    """containerd/ttrpc's Go client (ttrpcpeer bench) timing itself against ``server``."""

    def __init__(self, name: str, server: str) -> None:
        self.name = name
        self.server = server
        self.binary = ""
        self.path = Path()
        self._pids: list[int] = []

    async def start(self, ctx: BenchContext) -> None:
        self.binary = str(await ctx.go("ttrpc", "./cmd/ttrpcpeer"))
        self.path, pid = await _server(ctx, self.server, f"{self.server}-for-go")
        self._pids = [pid]

    def pids(self) -> list[int]:
        return self._pids

    async def measure(self, calls: int, inflight: int) -> Level:
        argv = [self.binary, "bench", str(self.path), str(calls), str(inflight)]
        data = json.loads((await run_to_end(argv, name="ttrpcpeer"))[-1])
        return Level(float(data["p50_us"]), float(data["p99_us"]), float(data["calls_per_s"]))


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        PythonClient("raw asyncio echo (floor)", "raw", raw=True),
        PythonClient("plugwire <-> plugwire", "ttrpc"),
        GoClient("Go <-> Go", "go"),
        GoClient("Go client -> plugwire server", "ttrpc"),
        PythonClient("plugwire client -> Go server", "go"),
    ]


SUITE = Suite(
    name="ttrpc",
    title="ttrpc unary Echo round trip",
    baseline="raw asyncio echo (floor)",
    contenders=_contenders,
    calls=(4000, 200),
    pairs=[
        ("plugwire <-> plugwire", "raw asyncio echo (floor)"),
        ("plugwire <-> plugwire", "Go <-> Go"),
        ("Go client -> plugwire server", "Go <-> Go"),
    ],
)
