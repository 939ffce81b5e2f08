"""docs/examples/kube/deploy_kv.py runs for real against the test control plane."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kube_images import KV_IMAGE  # type: ignore[import-not-found,unused-ignore]
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "kube" / "deploy_kv.py"

pytestmark = pytest.mark.interop


def test_deploy_kv_example(kube_cluster: KubeCluster) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            KV_IMAGE,
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "--name",
            "kv-example",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ready in pod kv-example-" in proc.stdout
    assert "Get(hello) = world" in proc.stdout
    assert "Deployment and Service deleted" in proc.stdout
    assert "plugwire.plugin.kv-example INFO put" in proc.stderr  # the plugin's own log line
