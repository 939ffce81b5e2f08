"""The kube family of ``plugwire demo``: plain about a missing control plane, real with one."""

from __future__ import annotations

from pathlib import Path

import pytest
from kube_images import KV_IMAGE  # type: ignore[import-not-found,unused-ignore]
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

from plugwire.kube._demo import demo

pytestmark = pytest.mark.anyio


async def test_demo_says_plainly_that_no_control_plane_is_reachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: x}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("PLUGWIRE_KUBECONFIG", str(kubeconfig))
    rows = await demo()
    assert [r.check for r in rows] == [
        "validate plugin spec",
        "refuse bad spec",
        "control plane",
        "discover default",
        "deploy KV plugin",
    ]
    assert [r.status for r in rows] == ["ok", "ok", "SKIP", "SKIP", "SKIP"]
    assert not any(r.ok for r in rows[2:])  # a skipped step is never ok
    assert "no Kubernetes control plane reachable at https://127.0.0.1:1" in rows[2].detail
    assert all("plugwire demo --kube-local" in r.detail for r in rows[2:])


@pytest.mark.interop
async def test_demo_deploys_and_calls_the_kv_plugin(
    kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGWIRE_KUBECONFIG", str(kube_cluster.kubeconfig))
    monkeypatch.setenv("PLUGWIRE_KUBE_DEMO_IMAGE", KV_IMAGE)
    rows = await demo()
    assert all(r.ok for r in rows), rows
    by_check = {r.check: r for r in rows}
    assert "Kubernetes v" in by_check["control plane"].detail
    assert "Put/Get via port-forward" in by_check["deploy KV plugin"].detail
