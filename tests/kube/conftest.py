"""Fixtures for the plugwire.kube tests.

``kube_cluster`` (session) starts the real control plane of
:mod:`support.kubecluster` once; the kwok node's pod runtime knows two images:
``plugwire.test/kvplugin`` (the Go KV plugin of tests/interop/kube/cmd/kvplugin,
listening on TCP as a Kubernetes plugin must) and ``plugwire.test/go-plugin-kv``
(upstream go-plugin's examples/grpc plugin, which listens on a unix socket) and
``plugwire.test/kv-python`` (docs/examples/kube/kv_plugin.py: the plugwire KV plugin).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_images import (  # type: ignore[import-not-found,unused-ignore]
    KV_IMAGE,
    PY_KV_IMAGE,
    UPSTREAM_KV_IMAGE,
)
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

_names = itertools.count()
PY_KV_PLUGIN = Path(__file__).resolve().parents[2] / "docs" / "examples" / "kube" / "kv_plugin.py"


#: The first test that needs the control plane also builds it when the Go build cache
#: is cold (about 600 CPU-seconds, see docs/kube.md): it alone gets this timeout
#: instead of the suite's 300 s.
COLD_BUILD_TIMEOUT = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if (
            "kube_cluster" in getattr(item, "fixturenames", ())
            and here in Path(str(item.fspath)).resolve().parents
        ):
            item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT))
            break


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    kvplugin = build_go("kube", "./cmd/kvplugin")
    upstream = build_go("kube", "github.com/hashicorp/go-plugin/examples/grpc/plugin-go-grpc")
    with KubeCluster() as cluster:
        assert cluster.runtime is not None
        cluster.runtime.images[KV_IMAGE] = [str(kvplugin)]
        cluster.runtime.images[UPSTREAM_KV_IMAGE] = [str(upstream)]
        cluster.runtime.images[PY_KV_IMAGE] = [sys.executable, str(PY_KV_PLUGIN)]
        yield cluster


@pytest.fixture
def unique_name() -> str:
    """A fresh DNS-1035 name per test (objects from one test never collide with another's)."""
    return f"kv-{next(_names)}"
