"""KubePlugin as a core handle: a core Host launches and closes it, core's managed
registry closes it (cleanup_plugins) and, at interpreter exit, deletes its objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from kube_images import KV_IMAGE  # type: ignore[import-not-found,unused-ignore]
from kubernetes import client as k8s
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

from plugwire.core import Host, PluginHandle, cleanup_plugins, live_plugins
from plugwire.core.handshake import Handshake
from plugwire.kube import KubePlugin, PluginSpec
from plugwire.kube.kv_example import GetRequest, KVStub, PutRequest

pytestmark = pytest.mark.interop


def exists(api: Any, name: str) -> tuple[bool, bool]:
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    found = []
    for read in (apps.read_namespaced_deployment, core.read_namespaced_service):
        try:
            read(name, "default", _request_timeout=5)
            found.append(True)
        except k8s.ApiException as exc:
            assert exc.status == 404
            found.append(False)
    return found[0], found[1]


def kv_plugin(api: Any, name: str) -> KubePlugin:
    return KubePlugin(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=name, image=KV_IMAGE),
        api_client=api,
        access="port-forward",
    )


@pytest.mark.anyio
async def test_cleanup_plugins_closes_live_kube_plugins(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    api = kube_cluster.api_client()
    async with kv_plugin(api, unique_name) as plugin:
        assert exists(api, unique_name) == (True, True)
        assert plugin in live_plugins(KubePlugin)
        await cleanup_plugins(KubePlugin)
        assert exists(api, unique_name) == (False, False)
        assert plugin.closed and plugin not in live_plugins()
        with pytest.raises(Exception, match="not connected"):
            plugin.dispense("kv_grpc")


@pytest.mark.anyio
async def test_a_core_host_launches_and_closes_a_kube_plugin(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    api = kube_cluster.api_client()
    other = f"{unique_name}-b"
    async with Host("kube-test") as host:
        plugin = await host.launch(kv_plugin(api, unique_name))
        second = await host.launch(kv_plugin(api, other))
        assert isinstance(plugin, PluginHandle)
        assert plugin.family == "kube" and plugin.process is None
        assert sorted(host.plugins) == sorted([unique_name, other])
        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="k", value=b"v"))
        assert (await kv.Get(GetRequest(key="k"))).value == b"v"
        assert exists(api, unique_name) == (True, True)

        # one plugin closed on its own, through the host
        await host.close(unique_name)
        assert plugin.closed and unique_name not in host.plugins
        assert exists(api, unique_name) == (False, False)
        assert exists(api, other) == (True, True)
        await second.ping()
    # leaving the host closed the other one
    assert second.closed
    assert exists(api, other) == (False, False)
    assert second not in live_plugins()


@pytest.mark.parametrize(
    "start",
    [
        "host = Host('leaky'); await host.__aenter__(); await host.launch(plugin)",
        "await plugin.__aenter__()",
    ],
    ids=["host", "async-with"],
)
def test_objects_of_live_plugins_are_deleted_at_exit(
    kube_cluster: KubeCluster, unique_name: str, start: str
) -> None:
    """A host process that exits without closing its plugin (started by a core Host or
    by 'async with', never left): core's managed registry runs KubePlugin.kill_now at
    exit, which deletes the Deployment and Service."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from plugwire.core import Host, live_plugins
        from plugwire.core.handshake import Handshake
        from plugwire.kube import KubePlugin, PluginSpec, load_api_client
        from plugwire.kube.kv_example import KVStub

        async def main():
            plugin = KubePlugin(
                handshake=Handshake("BASIC_PLUGIN", "hello"), plugins={{"kv_grpc": KVStub}},
                spec=PluginSpec(name={unique_name!r}, image={KV_IMAGE!r}),
                api_client=load_api_client({str(kube_cluster.kubeconfig)!r}),
                access="port-forward",
            )
            {start}  # never left: the program just ends
            assert live_plugins(KubePlugin) == [plugin]
            print("started", flush=True)
            sys.exit(3)

        asyncio.run(main())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "started" in proc.stdout
    assert exists(kube_cluster.api_client(), unique_name) == (False, False)


def test_blocking_host_launches_a_kube_plugin(kube_cluster: KubeCluster, unique_name: str) -> None:
    """The blocking façade: plain calls deploy, call and delete a kube plugin."""
    from plugwire.core.blocking import BlockingHost

    api = kube_cluster.api_client()
    with BlockingHost() as host:
        plugin = host.launch(kv_plugin(api, unique_name))
        kv = plugin.dispense("kv_grpc")  # runs on the loop; the stub comes back wrapped
        kv = host.wrap(kv)
        kv.Put(PutRequest(key="k", value=b"blocking"))
        assert kv.Get(GetRequest(key="k")).value == b"blocking"
        assert exists(api, unique_name) == (True, True)
    assert plugin.handle.closed
    assert exists(api, unique_name) == (False, False)
