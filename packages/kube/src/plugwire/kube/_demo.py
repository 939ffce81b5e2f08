"""``plugwire demo`` for the kube family.

Always: validates a plugin spec and shows a bad one being refused with its reason.
With a reachable control plane (``$PLUGWIRE_KUBECONFIG``, ``$KUBECONFIG``,
``~/.kube/config`` or in-cluster config; checked with a 3 s timeout): discovers the
plugins in ``$PLUGWIRE_KUBE_NAMESPACE`` (default ``default``) and, when
``$PLUGWIRE_KUBE_DEMO_IMAGE`` names a KV plugin image (go-plugin's
``BASIC_PLUGIN=hello`` KV example served on TCP), deploys it, calls Put/Get, and
deletes it. Without a control plane it says so plainly in the table.
"""

from __future__ import annotations

import os
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


async def demo() -> Sequence[DemoRow]:
    rows = _validation_rows()
    t0 = time.monotonic()
    api_client, where = await _reachable()
    if api_client is None:
        rows.append(
            DemoRow(
                FAMILY,
                "control plane",
                True,
                f"SKIPPED cluster steps: {where}. Set PLUGWIRE_KUBECONFIG to run them.",
                time.monotonic() - t0,
            )
        )
        return rows
    rows.append(DemoRow(FAMILY, "control plane", True, where, time.monotonic() - t0))
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
    image = os.environ.get("PLUGWIRE_KUBE_DEMO_IMAGE")
    if not image:
        rows.append(
            DemoRow(FAMILY, "deploy KV plugin", True, "SKIPPED: set PLUGWIRE_KUBE_DEMO_IMAGE")
        )
        return rows
    rows.append(await _deploy(api_client, namespace, image))
    return rows


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
