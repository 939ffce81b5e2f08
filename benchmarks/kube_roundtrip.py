"""Benchmark: KV calls to a Kubernetes-deployed plugin, through the API server vs direct.

Run: ``.venv/bin/python benchmarks/kube_roundtrip.py [--calls 300] [--rounds 3]``

Starts the test control plane (tests/support/kubecluster.py: etcd, kube-apiserver,
controller-manager, scheduler, kwok; binaries from the build cache), deploys the Go
KV plugin (tests/interop/kube/cmd/kvplugin) with :class:`plugwire.kube.KubePlugin`,
and times sequential ``Get`` calls

- through the client's port-forward (local listener -> WebSocket ``pods/portforward``
  on the API server -> kwok's kubelet API -> the plugin), i.e. plugwire.kube's path
  from outside a cluster;
- directly to the same plugin process on loopback with a plain
  :class:`plugwire.grpc.goplugin.PluginClient` reattached to it (the baseline: what the call costs
  without Kubernetes in between);

both with and without AutoMTLS, in alternating slices (``--rounds``) so load changes
on a shared machine hit both alike. Also reports the time to deploy (create, ready,
announce, connect) and to close (Shutdown RPC, delete and wait until gone). The ratio column is
port-forward p50 / direct p50.
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

from support.gobuild import build_go  # noqa: E402
from support.kubecluster import KubeCluster  # noqa: E402

from plugwire.core.handshake import Handshake  # noqa: E402
from plugwire.core.transport import Address  # noqa: E402
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ReattachConfig, ServicePlugin  # noqa: E402
from plugwire.grpc.mtls import TLSConfig, der_to_pem  # noqa: E402
from plugwire.kube import KubePlugin, PluginSpec  # noqa: E402
from plugwire.kube.kv_example import GetRequest, KVStub, PutRequest  # noqa: E402

HANDSHAKE = Handshake("BASIC_PLUGIN", "hello")
IMAGE = "plugwire.test/kvplugin:1"


def _local_target(cluster: KubeCluster, namespace: str, pod: str) -> str:
    from kubernetes import client

    pf: Any = client.CustomObjectsApi(cluster.api_client()).get_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", namespace, "portforwards", pod, _request_timeout=10
    )
    target = pf["spec"]["forwards"][0]["target"]
    return f"{target['address']}:{target['port']}"


async def _time_calls(kv: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await kv.Get(GetRequest(key="k"), timeout=10)
        out.append(time.perf_counter() - t0)
    return out


async def _case(
    cluster: KubeCluster, name: str, mtls: bool, calls: int, rounds: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    plugin = KubePlugin(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=name, image=IMAGE),
        api_client=cluster.api_client(),
        access="port-forward",
        auto_mtls=mtls,
        start_timeout=120,
    )
    async with plugin:
        deploy = time.perf_counter() - t0
        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="k", value=b"v" * 64), timeout=10)
        assert plugin.pod is not None and plugin.announce is not None
        tls = None
        if mtls:
            assert plugin._cert is not None and plugin.announce.server_cert is not None
            tls = TLSConfig.mutual(plugin._cert, der_to_pem(plugin.announce.server_cert))
        direct = PluginClient(
            ClientConfig(
                handshake=HANDSHAKE,
                plugins={"kv_grpc": ServicePlugin(stub=KVStub)},
                reattach=ReattachConfig(
                    protocol_version=1,
                    address=Address("tcp", _local_target(cluster, "default", plugin.pod)),
                    test=True,
                ),
                tls=tls,
                name=f"{name}-direct",
            )
        )
        await direct.start()
        dkv = direct.dispense("kv_grpc")
        await _time_calls(kv, 20)  # warm-up
        await _time_calls(dkv, 20)
        via_pf: list[float] = []
        via_direct: list[float] = []
        per = max(1, calls // rounds)
        for _ in range(rounds):
            via_pf += await _time_calls(kv, per)
            via_direct += await _time_calls(dkv, per)
        await direct.aclose()
        t1 = time.perf_counter()
    close = time.perf_counter() - t1
    return {"deploy": deploy, "close": close, "pf": via_pf, "direct": via_direct}


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(calls: int, rounds: int) -> None:
    kvplugin = build_go("kube", "./cmd/kvplugin")
    with KubeCluster() as cluster:
        assert cluster.runtime is not None
        cluster.runtime.images[IMAGE] = [str(kvplugin)]
        print(f"control plane up in {cluster.timings['ready']:.1f}s")
        rows = []
        for mtls in (False, True):
            r = await _case(cluster, f"bench-{'tls' if mtls else 'plain'}", mtls, calls, rounds)
            rows.append((mtls, r))
    print()
    cols = ("calls", "p50 ms", "p90 ms", "p99 ms")
    header = f"{'mTLS':5} {'path':13} " + " ".join(f"{c:>8}" for c in cols) + " ratio p50"
    print(header)
    print("-" * len(header))
    for mtls, r in rows:
        base = statistics.median(r["direct"])
        for path, key in (("direct", "direct"), ("port-forward", "pf")):
            v = r[key]
            p50 = statistics.median(v)
            cells = [f"{len(v):>8}"] + [f"{x * 1e3:>8.2f}" for x in (p50, _p(v, 90), _p(v, 99))]
            print(
                f"{'yes' if mtls else 'no':5} {path:13} "
                + " ".join(cells)
                + f" {p50 / base:>8.1f}x"
            )
    print()
    for mtls, r in rows:
        print(
            f"mTLS={'yes' if mtls else 'no '}: deploy (create, ready, announce, connect) "
            f"{r['deploy']:.2f}s, close (shutdown, delete, gone) {r['close']:.2f}s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
