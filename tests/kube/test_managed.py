"""Managed clients: cleanup_clients() kills them; what is left at interpreter exit is deleted."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from kube_images import KV_IMAGE  # type: ignore[import-not-found,unused-ignore]
from kubernetes import client as k8s
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.handshake import Handshake
from plugwire.kube import KubeClient, PluginSpec, cleanup_clients
from plugwire.kube.kv_example import KVStub

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


@pytest.mark.anyio
async def test_cleanup_clients_kills_managed_clients(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    api = kube_cluster.api_client()
    async with KubeClient(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=unique_name, image=KV_IMAGE),
        api_client=api,
        access="port-forward",
    ) as plugin:
        assert exists(api, unique_name) == (True, True)
        await cleanup_clients()
        assert exists(api, unique_name) == (False, False)
        with pytest.raises(Exception, match="not connected"):
            plugin.dispense("kv_grpc")


def test_objects_of_live_managed_clients_are_deleted_at_exit(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from plugwire.core.handshake import Handshake
        from plugwire.kube import KubeClient, PluginSpec, load_api_client
        from plugwire.kube.kv_example import KVStub

        async def main():
            client = KubeClient(
                handshake=Handshake("BASIC_PLUGIN", "hello"), plugins={{"kv_grpc": KVStub}},
                spec=PluginSpec(name={unique_name!r}, image={KV_IMAGE!r}),
                api_client=load_api_client({str(kube_cluster.kubeconfig)!r}),
                access="port-forward",
            )
            await client.__aenter__()  # never left: the program just ends
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
