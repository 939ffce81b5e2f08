"""The ``plugwire`` command line as a user meets it: ``python -m plugwire``, ``--version``
listing every distribution, shell completion, the check/inspect/run groups, the honest
demo table (SKIP rows), and each distribution's PyPI metadata."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from typing import Any

import pytest

DISTS = [
    "plugwire",
    "plugwire-core",
    "plugwire-grpc",
    "plugwire-ttrpc",
    "plugwire-http",
    "plugwire-kube",
]


def plugwire(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plugwire", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_python_m_plugwire_and_version_lists_every_distribution() -> None:
    proc = plugwire("--version")
    assert proc.returncode == 0, proc.stderr
    for dist in DISTS:
        assert f"  {dist} {metadata.version(dist)}" in proc.stdout


def test_check_groups_list_every_family() -> None:
    proc = plugwire("check", "--help")
    assert proc.returncode == 0
    for family in ("goplugin", "nri", "cipd", "drp", "ttrpc"):
        assert family in proc.stdout
    inspect = plugwire("inspect", "--help").stdout
    for family in ("goplugin", "nri", "cipd", "drp"):
        assert family in inspect
    run = plugwire("run", "--help").stdout
    for family in ("goplugin", "nri", "cipd", "drp"):
        assert family in run


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(shell: str) -> None:
    proc = plugwire("completion", shell)
    assert proc.returncode == 0
    assert "_PLUGWIRE_COMPLETE" in proc.stdout


def test_completion_completes_subcommands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire"],
        capture_output=True,
        text=True,
        env={**os.environ, "_PLUGWIRE_COMPLETE": "bash_complete", "COMP_WORDS": "plugwire ch",
             "COMP_CWORD": "1"},
    )  # fmt: skip
    assert "check" in proc.stdout


def test_demo_without_a_cluster_says_skip_for_the_kube_steps(tmp_path: object) -> None:
    proc = plugwire(
        "demo", "--family", "core", "--family", "kube",
        env={"PLUGWIRE_KUBECONFIG": "/nonexistent/kubeconfig", "KUBECONFIG": "/nonexistent"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kube_rows = [line for line in proc.stdout.splitlines() if line.startswith("kube ")]
    cluster = [line for line in kube_rows if "control plane" in line or "deploy KV" in line]
    assert cluster and all(" SKIP " in line and " ok " not in line for line in cluster), kube_rows
    assert "plugwire demo --kube-local" in proc.stdout
    assert "3 skipped" in proc.stdout


@pytest.mark.parametrize("dist", DISTS)
def test_pypi_metadata_is_complete(dist: str) -> None:
    meta: Any = metadata.metadata(dist)  # an email.message.Message underneath
    assert meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert (meta.get_payload() or "").strip(), f"{dist}: no readme in its metadata"
    assert any(c.startswith("License ::") for c in meta.get_all("Classifier") or [])
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
