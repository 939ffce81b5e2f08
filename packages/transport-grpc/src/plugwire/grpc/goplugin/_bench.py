"""``plugwire bench goplugin`` and ``plugwire bench mtls``: go-plugin KV round trips.

goplugin: unary KV ``Get`` (16-byte value) between every pairing of the upstream Go
host/plugin (tests/interop/goplugin, hashicorp/go-plugin) and plugwire, plugwire with
itself (over grpc and over negotiated ttrpc), python-plugin (PyPI) with itself and under
the Go host, a bare grpc.aio client/server of the same proto, and the floor: a raw
asyncio unix-socket echo of the encoded request. The baseline is Go host <-> Go plugin.

mtls: AutoMTLS on against off, for plugwire and python-plugin, and the cold start of a
plugwire plugin (launch to first answered call) against ``python -c 'import grpc'``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from typing import Any

import grpc
from plugwire.core.bench import (
    BenchContext,
    CallContender,
    Contender,
    Level,
    Suite,
    Unavailable,
    run_to_end,
)

from .client import PluginClient
from .config import ClientConfig
from .examples import HANDSHAKE, kv_pb2, kv_pb2_grpc
from .plugin import ServicePlugin

__all__ = ["GOPLUGIN", "MTLS"]

PEER = [sys.executable, "-m", "plugwire.grpc.goplugin._bench_peer"]
VALUE = b"0123456789abcdef"


SERVICE = kv_pb2.DESCRIPTOR.services_by_name["KV"]


def _config(cmd: list[str], auto_mtls: bool = False, ttrpc: bool = False) -> ClientConfig:
    if ttrpc:  # offer ttrpc first; the anywire peer serves one servicer on either wire
        return ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub, service=SERVICE)},
            cmd=cmd,
            wires=("ttrpc", "grpc"),
        )
    return ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub)},
        cmd=cmd,
        auto_mtls=auto_mtls,
    )


class PlugwireHost(CallContender):
    """plugwire's PluginClient in this process, the plugin a child."""

    def __init__(
        self,
        name: str,
        plugin: list[str] | None,
        auto_mtls: bool = False,
        ttrpc: bool = False,
    ) -> None:
        super().__init__(name)
        self.plugin = plugin
        self.auto_mtls = auto_mtls
        self.ttrpc = ttrpc

    async def _command(self, ctx: BenchContext) -> list[str]:
        if self.plugin is not None:
            return self.plugin
        return [str(await ctx.go("goplugin", "./cmd/kvplugin", name="kvplugin"))]

    async def start(self, ctx: BenchContext) -> None:
        client = await ctx.stack.enter_async_context(
            PluginClient(_config(await self._command(ctx), self.auto_mtls, self.ttrpc))
        )
        if self.ttrpc and client.protocol != "ttrpc":
            raise Unavailable(f"the plugin answered {client.protocol!r}, not ttrpc")
        stub = client.dispense("kv_grpc")
        await stub.Put(kv_pb2.PutRequest(key="bench", value=VALUE))
        req = kv_pb2.GetRequest(key="bench")
        self.call = lambda: stub.Get(req)
        self._pids = [client.pid] if client.pid else []

    async def cold_start(self, ctx: BenchContext) -> float | None:
        cmd = await self._command(ctx)
        t0 = time.perf_counter()
        async with PluginClient(_config(cmd, self.auto_mtls, self.ttrpc)) as client:
            await client.dispense("kv_grpc").Put(kv_pb2.PutRequest(key="x", value=VALUE))
            return time.perf_counter() - t0


class GoHost(Contender):
    """go-plugin's own Go host (tests/interop/goplugin/cmd/benchhost) timing itself."""

    def __init__(self, name: str, plugin: list[str] | None) -> None:
        self.name = name
        self.plugin = plugin
        self.argv: list[str] = []

    async def start(self, ctx: BenchContext) -> None:
        host = await ctx.go("goplugin", "./cmd/benchhost", name="benchhost")
        plugin = self.plugin or [str(await ctx.go("goplugin", "./cmd/kvplugin", name="kvplugin"))]
        self.argv = [str(host), "-warmup", "50", "--", *plugin]

    async def measure(self, calls: int, inflight: int) -> Level:
        calls = max(inflight, calls - calls % inflight)
        out = await run_to_end(
            [self.argv[0], "-n", str(calls), "-c", str(inflight), *self.argv[1:]], name="benchhost"
        )
        data = json.loads(out[-1])
        return Level(float(data["p50_us"]), float(data["p99_us"]), float(data["calls_per_s"]))

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        await run_to_end(
            [self.argv[0], "-n", "1", "-c", "1", "-warmup", "0", *self.argv[3:]], name="benchhost"
        )
        return time.perf_counter() - t0


class BareGrpc(CallContender):
    """grpc.aio client -> grpc.aio server in a child, same proto, no plugin machinery."""

    async def start(self, ctx: BenchContext) -> None:
        path = ctx.path("kv.sock")
        proc = await ctx.spawn([*PEER, "bare", str(path)], name="bare-grpc", ready="ready")
        channel = await ctx.stack.enter_async_context(grpc.aio.insecure_channel(f"unix:{path}"))
        stub = kv_pb2_grpc.KVStub(channel)
        await stub.Put(kv_pb2.PutRequest(key="bench", value=VALUE))
        req = kv_pb2.GetRequest(key="bench")
        self.call = lambda: stub.Get(req)
        self._pids = [proc.pid]

    async def cold_start(self, ctx: BenchContext) -> float | None:
        path = ctx.path("kv-cold.sock")
        t0 = time.perf_counter()
        await ctx.spawn([*PEER, "bare", str(path)], name="bare-grpc", ready="ready")
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            await kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key="x", value=VALUE))
        seconds = time.perf_counter() - t0
        path.unlink(missing_ok=True)
        return seconds


class RawEcho(CallContender):
    """The floor of any Python RPC over one unix socket: the raw asyncio echo of
    ``plugwire bench ttrpc`` (plugwire.ttrpc's bench peer) sending the encoded
    ``GetRequest`` length-prefixed and decoding the echo as a ``GetResponse``."""

    async def _connect(self, ctx: BenchContext, name: str) -> None:
        try:
            from plugwire.ttrpc._bench import raw_call, raw_server
        except ImportError:
            raise Unavailable("plugwire-ttrpc is not installed (it serves the raw echo)") from None
        path, pid = await raw_server(ctx, name)
        payload = kv_pb2.GetRequest(key="bench").SerializeToString()
        self.call = await raw_call(ctx, path, payload, kv_pb2.GetResponse.FromString)
        self._pids = [pid]

    async def start(self, ctx: BenchContext) -> None:
        await self._connect(ctx, "raw-echo")

    async def cold_start(self, ctx: BenchContext) -> float | None:
        keep = self.call, self._pids
        t0 = time.perf_counter()
        await self._connect(ctx, "raw-echo-cold")
        assert self.call is not None
        await self.call()
        seconds = time.perf_counter() - t0
        self.call, self._pids = keep
        return seconds


def _pyplugin_available() -> None:
    if importlib.util.find_spec("pyplugin") is None:
        raise Unavailable("python-plugin is not installed (pip install 'plugwire[bench]')")


PYPLUGIN = [sys.executable, "-m", "plugwire.grpc._bench_pyplugin"]


class PyPluginHost(Contender):
    """python-plugin's host (grpclib) in a child process reporting its own figures.

    (python-plugin and plugwire.grpc.goplugin both register go-plugin's protos in
    protobuf's default pool, so its host cannot run in this process.)
    """

    def __init__(self, name: str, auto_mtls: bool = False) -> None:
        self.name = name
        self.auto_mtls = auto_mtls
        self.rss: list[float] = []

    async def start(self, ctx: BenchContext) -> None:
        _pyplugin_available()

    async def _run(self, calls: int, inflight: int) -> dict[str, Any]:
        argv = [*PYPLUGIN, "host", str(calls), str(inflight)]
        out = await run_to_end(argv + (["mtls"] if self.auto_mtls else []), name="pyplugin-host")
        data: dict[str, Any] = json.loads(out[-1])
        if data.get("rss_mb"):
            self.rss.append(float(data["rss_mb"]))
        return data

    async def measure(self, calls: int, inflight: int) -> Level:
        data = await self._run(calls, inflight)
        return Level(float(data["p50_us"]), float(data["p99_us"]), float(data["calls_per_s"]))

    async def cold_start(self, ctx: BenchContext) -> float | None:
        return float((await self._run(1, 1))["cold_start_s"])

    def peak_rss_mb(self) -> float | None:
        return max(self.rss) if self.rss else None


class ImportGrpc(Contender):
    """``python -c 'import grpc'``: the floor of any Python gRPC plugin's start."""

    name = "python -c 'import grpc'"
    levels = ()

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        await run_to_end([sys.executable, "-c", "import grpc"], name="import-grpc")
        return time.perf_counter() - t0


def _goplugin(ctx: BenchContext) -> list[Contender]:
    pyplugin_cmd = [*PYPLUGIN, "plugin"]
    return [
        GoHost("Go host <-> Go plugin", None),
        GoHost("Go host -> plugwire plugin", PEER),
        PlugwireHost("plugwire host -> Go plugin", None),
        PlugwireHost("plugwire <-> plugwire grpc", PEER),
        PlugwireHost("plugwire <-> plugwire ttrpc (negotiated)", [*PEER, "anywire"], ttrpc=True),
        BareGrpc("bare grpc.aio"),
        RawEcho("raw asyncio echo (floor)"),
        PyPluginHost("python-plugin <-> python-plugin"),
        GoHost("Go host -> python-plugin plugin", pyplugin_cmd),
    ]


def _mtls(ctx: BenchContext) -> list[Contender]:
    return [
        ImportGrpc(),
        PlugwireHost("plugwire, AutoMTLS off", PEER),
        PlugwireHost("plugwire, AutoMTLS on", PEER, auto_mtls=True),
        PyPluginHost("python-plugin, AutoMTLS off"),
        PyPluginHost("python-plugin, AutoMTLS on", auto_mtls=True),
    ]


GOPLUGIN = Suite(
    name="goplugin",
    title="go-plugin KV Get round trip",
    baseline="Go host <-> Go plugin",
    contenders=_goplugin,
    calls=(2000, 128),
    pairs=[
        ("Go host -> plugwire plugin", "Go host <-> Go plugin"),
        ("plugwire <-> plugwire grpc", "bare grpc.aio"),
        ("plugwire <-> plugwire ttrpc (negotiated)", "plugwire <-> plugwire grpc"),
        ("plugwire <-> plugwire ttrpc (negotiated)", "raw asyncio echo (floor)"),
        ("plugwire <-> plugwire grpc", "python-plugin <-> python-plugin"),
        ("Go host -> plugwire plugin", "Go host -> python-plugin plugin"),
    ],
)

MTLS = Suite(
    name="mtls",
    title="AutoMTLS on vs off: cold start and per-call cost",
    baseline="python -c 'import grpc'",
    contenders=_mtls,
    calls=(1000, 64),
    cold_rounds=(5, 1),
    pairs=[
        ("plugwire, AutoMTLS on", "plugwire, AutoMTLS off"),
        ("python-plugin, AutoMTLS on", "python-plugin, AutoMTLS off"),
        ("plugwire, AutoMTLS on", "python-plugin, AutoMTLS on"),
    ],
)
