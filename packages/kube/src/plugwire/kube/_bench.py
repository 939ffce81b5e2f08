"""``plugwire bench kube``: KV calls to a Kubernetes-deployed plugin on a local control plane.

The control plane is the test one (tests/support/kubecluster.py: etcd, kube-apiserver,
controller-manager, scheduler and kwok, from the build cache; a repository checkout is
needed). The Go KV plugin (tests/interop/kube/cmd/kvplugin) is deployed with
:class:`KubePlugin`, without and with AutoMTLS, and ``Get`` is timed through the
client's port-forward (local listener -> WebSocket ``pods/portforward`` on the API
server -> kwok's kubelet API -> the plugin) and directly on loopback with a
:class:`PluginClient` reattached to the same process (the baseline: the call without
Kubernetes in between). Cold start: deploy (create, ready, announce, connect) to the
first answered call.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import anyio

from plugwire.core.bench import BenchContext, CallContender, Contender, Suite, Unavailable
from plugwire.core.bench._runner import support_module
from plugwire.core.handshake import Handshake
from plugwire.core.transport import Address
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ReattachConfig, ServicePlugin
from plugwire.grpc.mtls import TLSConfig, der_to_pem

from .kv_example import GetRequest, KVStub, PutRequest
from .plugin import KubePlugin
from .spec import PluginSpec

__all__ = ["SUITE"]

HANDSHAKE = Handshake("BASIC_PLUGIN", "hello")
IMAGE = "plugwire.test/kvplugin:1"
_serial = itertools.count()


async def _cluster(ctx: BenchContext) -> Any:
    if "cluster" not in ctx.shared:
        kubecluster = support_module("kubecluster")
        kvplugin = await ctx.go("kube", "./cmd/kvplugin")
        cluster = kubecluster.KubeCluster()
        try:
            await anyio.to_thread.run_sync(cluster.__enter__)
        except Exception as exc:
            raise Unavailable(f"local control plane did not start: {exc}") from exc
        ctx.stack.callback(cluster.__exit__, None, None, None)
        cluster.runtime.images[IMAGE] = [str(kvplugin)]
        ctx.shared["cluster"] = cluster
    return ctx.shared["cluster"]


def _plugin(cluster: Any, mtls: bool) -> KubePlugin:
    return KubePlugin(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=f"bench-{next(_serial)}", image=IMAGE),
        api_client=cluster.api_client(),
        access="port-forward",
        auto_mtls=mtls,
        start_timeout=120,
    )


def _local_target(cluster: Any, pod: str) -> str:
    from kubernetes import client

    pf: Any = client.CustomObjectsApi(cluster.api_client()).get_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", "default", "portforwards", pod, _request_timeout=10
    )
    target = pf["spec"]["forwards"][0]["target"]
    return f"{target['address']}:{target['port']}"


async def _deployment(ctx: BenchContext, mtls: bool) -> dict[str, Any]:
    key = f"deployment-{mtls}"
    if key not in ctx.shared:
        cluster = await _cluster(ctx)
        plugin = await ctx.stack.enter_async_context(_plugin(cluster, mtls))
        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="k", value=b"v" * 16), timeout=10)
        assert plugin.pod is not None and plugin.announce is not None
        tls = None
        if mtls:
            assert plugin._cert is not None and plugin.announce.server_cert is not None
            tls = TLSConfig.mutual(plugin._cert, der_to_pem(plugin.announce.server_cert))
        target = await anyio.to_thread.run_sync(_local_target, cluster, plugin.pod)
        direct = PluginClient(
            ClientConfig(
                handshake=HANDSHAKE,
                plugins={"kv_grpc": ServicePlugin(stub=KVStub)},
                reattach=ReattachConfig(
                    protocol_version=1, address=Address("tcp", target), test=True
                ),
                tls=tls,
                name="bench-direct",
            )
        )
        await ctx.stack.enter_async_context(direct)
        ctx.shared[key] = {"pf": kv, "direct": direct.dispense("kv_grpc"), "cluster": cluster}
    return dict(ctx.shared[key])


class KubeCall(CallContender):
    def __init__(self, name: str, mtls: bool, path: str) -> None:
        super().__init__(name)
        self.mtls = mtls
        self.path = path

    async def start(self, ctx: BenchContext) -> None:
        stub = (await _deployment(ctx, self.mtls))[self.path]
        req = GetRequest(key="k")
        self.call = lambda: stub.Get(req, timeout=30)

    async def cold_start(self, ctx: BenchContext) -> float | None:
        if self.path != "pf":
            return None
        cluster = await _cluster(ctx)
        t0 = time.perf_counter()
        async with _plugin(cluster, self.mtls) as plugin:
            await plugin.dispense("kv_grpc").Put(PutRequest(key="k", value=b"v"), timeout=30)
            return time.perf_counter() - t0


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        KubeCall("direct (loopback)", False, "direct"),
        KubeCall("port-forward via API server", False, "pf"),
        KubeCall("direct, AutoMTLS", True, "direct"),
        KubeCall("port-forward via API server, AutoMTLS", True, "pf"),
    ]


SUITE = Suite(
    name="kube",
    title="KV Get to a Kubernetes-deployed Go plugin, local control plane",
    baseline="direct (loopback)",
    contenders=_contenders,
    calls=(500, 50),
    warmup=(20, 5),
    cold_rounds=(2, 1),
    pairs=[
        ("port-forward via API server, AutoMTLS", "direct, AutoMTLS"),
        ("direct, AutoMTLS", "direct (loopback)"),
    ],
    notes=["cold start: deploy (create, ready, announce, connect) to the first answered call"],
)
