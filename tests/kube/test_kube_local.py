"""``plugwire kube up`` and ``plugwire demo --kube-local``: a real local control plane
(etcd, kube-apiserver, controller-manager, scheduler, kwok) started by plugwire.kube.local
from the kubeplane binary the kube tests build (cached in ~/.cache/plugwire)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.kubecluster import kubeplane_binary  # type: ignore[import-not-found,unused-ignore]

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def kubeplane() -> Path:
    return kubeplane_binary()  # built (or found) exactly as the kube tests do


def test_demo_kube_local_runs_the_cluster_steps_for_real(kubeplane: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "demo", "--family", "kube", "--kube-local"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PLUGWIRE_KUBEPLANE": str(kubeplane)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "SKIP" not in proc.stdout
    assert "0 failed, 0 skipped" in proc.stdout
    assert "local (plugwire kube up): https://127.0.0.1:" in proc.stdout
    assert "Put/Get via port-forward to pod plugwire-demo-" in proc.stdout
    # progress of the long steps, on stderr
    assert "demo kube: starting kube-apiserver" in proc.stderr
    assert "demo kube: control plane ready" in proc.stderr


def test_demo_kube_local_json_has_no_skips(kubeplane: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "demo", "--family", "kube", "--kube-local", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PLUGWIRE_KUBEPLANE": str(kubeplane)},
    )
    rows = json.loads(proc.stdout)
    assert [r["status"] for r in rows] == ["ok"] * 5, rows
    assert proc.returncode == 0


def test_kube_up_serves_a_control_plane_until_interrupted(kubeplane: Path, tmp_path: Path) -> None:
    from kubernetes import client, config

    workdir = tmp_path / "plane"
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugwire", "kube", "up", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PLUGWIRE_KUBEPLANE": str(kubeplane)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("export KUBECONFIG="), line
        kubeconfig = line.strip().split("=", 1)[1]
        api = config.new_client_from_config(config_file=kubeconfig)
        version = client.VersionApi(api).get_code(_request_timeout=10)
        assert version.git_version
        nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
        assert [n.metadata.name for n in nodes] == ["kwok-node-0"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert (workdir / "kube-apiserver.log").is_file()  # --workdir is kept
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_kube_up_without_a_binary_names_what_is_missing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PLUGWIRE_CACHE": str(tmp_path / "cache"),
        "PLUGWIRE_KUBE_SOURCES": str(tmp_path / "nowhere"),
        "PATH": "/nonexistent",
    }
    env.pop("PLUGWIRE_KUBEPLANE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "kube", "up"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "no kubeplane binary" in proc.stderr
