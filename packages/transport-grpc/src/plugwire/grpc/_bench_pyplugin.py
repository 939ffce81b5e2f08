"""python-plugin (PyPI ``python-plugin``, import ``pyplugin``) peers for ``plugwire bench``.

python-plugin registers go-plugin's protos (``plugin.ConnInfo``, ...) in protobuf's
default pool, as plugwire.grpc.goplugin does, so the two cannot share a process: its
host runs here, in a child of the bench, and reports its own figures as JSON.

``python -m plugwire.grpc._bench_pyplugin plugin``: the KV plugin (examples/grpc
contract) served by python-plugin. ``... host N C [mtls]``: a python-plugin host that
launches that plugin, makes N ``Get`` calls C at a time and prints one JSON line
(p50_us, p99_us, calls_per_s, cold_start_s: launch to first answered call, rss_mb).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from plugwire.grpc._generated.plugwire_examples import kv_pb2


def _kv_plugin() -> Any:
    import grpclib.client
    import grpclib.const
    import pyplugin

    class Servicer:
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}

        async def get(self, stream: Any) -> None:
            req = await stream.recv_message()
            await stream.send_message(kv_pb2.GetResponse(value=self.data.get(req.key, b"")))

        async def put(self, stream: Any) -> None:
            req = await stream.recv_message()
            self.data[req.key] = req.value
            await stream.send_message(kv_pb2.Empty())

        def __mapping__(self) -> dict[str, Any]:
            unary = grpclib.const.Cardinality.UNARY_UNARY
            return {
                "/proto.KV/Get": grpclib.const.Handler(
                    self.get, unary, kv_pb2.GetRequest, kv_pb2.GetResponse
                ),
                "/proto.KV/Put": grpclib.const.Handler(
                    self.put, unary, kv_pb2.PutRequest, kv_pb2.Empty
                ),
            }

    class Stub:
        def __init__(self, channel: Any) -> None:
            self.Get = grpclib.client.UnaryUnaryMethod(
                channel, "/proto.KV/Get", kv_pb2.GetRequest, kv_pb2.GetResponse
            )
            self.Put = grpclib.client.UnaryUnaryMethod(
                channel, "/proto.KV/Put", kv_pb2.PutRequest, kv_pb2.Empty
            )

    class KVPlugin(pyplugin.Plugin):  # type: ignore[misc]
        def servicers(self, broker: Any) -> list[Any]:
            return [Servicer()]

        def stub(self, broker: Any, channel: Any) -> Any:
            return Stub(channel)

    return KVPlugin()


def _handshake() -> Any:
    import pyplugin

    return pyplugin.HandshakeConfig(
        protocol_version=1, magic_cookie_key="BASIC_PLUGIN", magic_cookie_value="hello"
    )


def _peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


async def _host(calls: int, inflight: int, mtls: bool) -> dict[str, Any]:
    import pyplugin

    config = pyplugin.ClientConfig(
        handshake_config=_handshake(),
        plugins={"kv_grpc": _kv_plugin()},
        cmd=[sys.executable, "-m", "plugwire.grpc._bench_pyplugin", "plugin"],
        auto_mtls=mtls,
    )
    t0 = time.perf_counter()
    async with pyplugin.Client(config) as client:
        await client.start()
        stub = client.dispense("kv_grpc")
        await stub.Put(kv_pb2.PutRequest(key="bench", value=b"0123456789abcdef"))
        cold = time.perf_counter() - t0
        req = kv_pb2.GetRequest(key="bench")
        for _ in range(min(50, calls)):
            await stub.Get(req)
        latencies: list[float] = []
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                await stub.Get(req)
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - start
        rss = _peak_rss_mb(client.pid)
    latencies.sort()
    return {
        "p50_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] * 1e6,
        "calls_per_s": len(latencies) / elapsed,
        "cold_start_s": cold,
        "rss_mb": rss,
    }


def main(argv: list[str]) -> None:
    import json

    import pyplugin

    if argv[:1] == ["plugin"]:
        pyplugin.serve(
            pyplugin.ServeConfig(handshake_config=_handshake(), plugins={"kv_grpc": _kv_plugin()})
        )
    elif argv[:1] == ["host"]:
        result = asyncio.run(_host(int(argv[1]), int(argv[2]), argv[3:4] == ["mtls"]))
        print(json.dumps(result), flush=True)
    else:
        raise SystemExit(f"usage: {__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
