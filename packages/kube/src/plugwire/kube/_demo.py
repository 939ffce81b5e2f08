"""``plugwire demo`` for the kube family.

Always: validates a plugin spec and shows a bad one being refused with its reason.
With a reachable control plane (``$PLUGWIRE_KUBECONFIG``, ``$KUBECONFIG``,
``~/.kube/config`` or in-cluster config; checked with a 3 s timeout): discovers the
plugins in ``$PLUGWIRE_KUBE_NAMESPACE`` (default ``default``) and, when
``$PLUGWIRE_KUBE_DEMO_IMAGE`` names a KV plugin image (go-plugin's
``BASIC_PLUGIN=hello`` KV example served on TCP), deploys it, calls Put/Get, and
deletes it. With ``$PLUGWIRE_KUBE_LOCAL`` set (``plugwire demo --kube-local``) it first
starts a real local control plane (:mod:`plugwire.kube.local`, ``plugwire kube up``)
and deploys plugwire's KV example plugin there. Without a control plane the cluster
steps are SKIP rows naming the command that would run them, never ``ok``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from plugwire.core.demo import DemoRow

from .api import KubeAPI, load_api_client
from .discover import discover
from .errors import KubeValidationError
from .spec import PluginSpec, host_env, prepare

FAMILY = "kube"


def _validation_rows() -> list[DemoRow]:
    t0 = time.monotonic()
    env = host_env(cookie={"BASIC_PLUGIN": "hello"}, protocol_versions=[1], port=0)
    prepared = prepare(
        namespace="default", spec=PluginSpec(name="kv", image="example/kv:1"), env=env
    )
    container = prepared.deployment["spec"]["template"]["spec"]["containers"][0]
    ok_row = DemoRow(
        FAMILY,
        "validate plugin spec",
        True,
        f"Deployment+Service {prepared.name}, port {prepared.container_port}, "
        f"{len(container['env'])} host env vars",
        time.monotonic() - t0,
    )
    t1 = time.monotonic()
    try:
        prepare(namespace="default", spec=PluginSpec(name="KV_Plugin", image="example/kv:1"))
    except KubeValidationError as exc:
        bad_row = DemoRow(FAMILY, "refuse bad spec", True, str(exc), time.monotonic() - t1)
    else:  # pragma: no cover - would be a bug
        bad_row = DemoRow(FAMILY, "refuse bad spec", False, "a non-DNS name was accepted")
    return [ok_row, bad_row]


async def _reachable() -> tuple[Any, str]:
    """An ApiClient and a description, or (None, why not)."""
    from kubernetes import client

    kubeconfig = os.environ.get("PLUGWIRE_KUBECONFIG")
    try:
        api_client = load_api_client(kubeconfig)
    except Exception as exc:
        return None, f"no Kubernetes configuration found ({type(exc).__name__}: {exc})"
    api = KubeAPI(api_client, timeout=3.0)
    try:
        info = await api.call("GET /version", client.VersionApi(api.api_client).get_code)
    except Exception as exc:
        host = api_client.configuration.host
        return None, f"no Kubernetes control plane reachable at {host} ({exc})"
    return api.api_client, f"{api_client.configuration.host} (Kubernetes {info.git_version})"


#: The image the local pod runtime maps to plugwire's KV example plugin served on TCP.
LOCAL_KV_IMAGE = "plugwire.local/kv-python:1"
_LOCAL_KV_ARGV = [
    sys.executable,
    "-c",
    "from plugwire.grpc.goplugin import serve\n"
    "from plugwire.grpc.goplugin.examples import HANDSHAKE\n"
    "from plugwire.grpc.goplugin.examples.kv import KVPlugin\n"
    "serve(handshake=HANDSHAKE, plugins={'kv_grpc': KVPlugin()}, network='tcp')\n",
]
_ENABLE = (
    "run `plugwire demo --kube-local` (starts a local control plane, see `plugwire kube up`) "
    "or set PLUGWIRE_KUBECONFIG"
)
CLUSTER_STEPS = ("control plane", "discover default", "deploy KV plugin")


def _progress(message: str) -> None:
    """Long steps (building, starting the control plane) say what they do, on stderr
    (``plugwire demo`` without ``--json`` sets ``$PLUGWIRE_DEMO_PROGRESS``)."""
    if os.environ.get("PLUGWIRE_DEMO_PROGRESS"):
        print(f"demo kube: {message}", file=sys.stderr, flush=True)


async def demo() -> Sequence[DemoRow]:
    rows = _validation_rows()
    if os.environ.get("PLUGWIRE_KUBE_LOCAL"):
        return rows + await _local_rows()
    t0 = time.monotonic()
    api_client, where = await _reachable()
    if api_client is None:
        rows += [
            DemoRow.skip(FAMILY, step, f"{where}; {_ENABLE}" if i == 0 else _ENABLE)
            for i, step in enumerate(CLUSTER_STEPS)
        ]
        return rows
    rows.append(DemoRow(FAMILY, "control plane", True, where, time.monotonic() - t0))
    image = os.environ.get("PLUGWIRE_KUBE_DEMO_IMAGE")
    return rows + await _cluster_rows(api_client, image)


async def _cluster_rows(api_client: Any, image: str | None) -> list[DemoRow]:
    rows: list[DemoRow] = []
    namespace = os.environ.get("PLUGWIRE_KUBE_NAMESPACE", "default")
    t1 = time.monotonic()
    found = await discover(api_client, namespace)
    rows.append(
        DemoRow(
            FAMILY,
            f"discover {namespace}",
            True,
            ", ".join(f"{p.name}({p.plugin})" for p in found) or "no plugin Services",
            time.monotonic() - t1,
        )
    )
    if not image:
        rows.append(
            DemoRow.skip(
                FAMILY,
                "deploy KV plugin",
                "set PLUGWIRE_KUBE_DEMO_IMAGE to a KV plugin image, or run "
                "`plugwire demo --kube-local`",
            )
        )
        return rows
    rows.append(await _deploy(api_client, namespace, image))
    return rows


async def _local_rows() -> list[DemoRow]:
    from .local import LocalCluster, LocalClusterError

    t0 = time.monotonic()
    try:
        async with LocalCluster(progress=_progress) as cluster:
            assert cluster.runtime is not None
            cluster.runtime.images[LOCAL_KV_IMAGE] = list(_LOCAL_KV_ARGV)
            api_client = cluster.api_client()
            _, where = await _reachable_client(api_client)
            rows = [
                DemoRow(
                    FAMILY,
                    "control plane",
                    True,
                    f"local (plugwire kube up): {where}",
                    time.monotonic() - t0,
                )
            ]
            _progress("deploying the KV plugin")
            rows += await _cluster_rows(api_client, LOCAL_KV_IMAGE)
            return rows
    except LocalClusterError as exc:
        return [DemoRow(FAMILY, "control plane", False, f"local control plane: {exc}")] + [
            DemoRow.skip(FAMILY, step, "the local control plane did not start")
            for step in CLUSTER_STEPS[1:]
        ]


async def _reachable_client(api_client: Any) -> tuple[Any, str]:
    from kubernetes import client

    api = KubeAPI(api_client, timeout=5.0)
    info = await api.call("GET /version", client.VersionApi(api.api_client).get_code)
    return api.api_client, f"{api_client.configuration.host} (Kubernetes {info.git_version})"


async def _deploy(api_client: Any, namespace: str, image: str) -> DemoRow:
    from plugwire.core.handshake import Handshake

    from .kv_example import GetRequest, KVStub, PutRequest
    from .plugin import KubePlugin

    t0 = time.monotonic()
    async with KubePlugin(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=f"plugwire-demo-{os.getpid()}", image=image),
        namespace=namespace,
        api_client=api_client,
        start_timeout=15.0,
    ) as plugin:
        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="demo", value=b"hello from plugwire.kube"), timeout=10)
        value = (await kv.Get(GetRequest(key="demo"), timeout=10)).value
    return DemoRow(
        FAMILY,
        "deploy KV plugin",
        value == b"hello from plugwire.kube",
        f"Put/Get via {plugin.chosen_access} to pod {plugin.pod}, then deleted",
        time.monotonic() - t0,
    )
