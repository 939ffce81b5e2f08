"""plugwire.kube against a real control plane (etcd, kube-apiserver, controller-manager,
scheduler built from upstream) with kwok simulating the node: pods' containers run as
local processes reached through the API server's pods/log and pods/portforward."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from kube_images import (  # type: ignore[import-not-found,unused-ignore]
    KV_IMAGE,
    PY_KV_IMAGE,
    UPSTREAM_KV_IMAGE,
)
from kubernetes import client as k8s
from support.kubecluster import KubeCluster  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.errors import HandshakeError
from plugwire.core.handshake import Handshake
from plugwire.kube import (
    LABEL_PLUGIN,
    KubeAPI,
    KubeAPIError,
    KubePlugin,
    PluginAnnounceError,
    PluginNotReadyError,
    PluginSpec,
    discover,
)
from plugwire.kube.kv_example import GetRequest, KVStub, PutRequest

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

HANDSHAKE = Handshake("BASIC_PLUGIN", "hello", protocol_versions=(1,))
PLUGINS = {"kv_grpc": KVStub}


def kv_client(cluster: KubeCluster, name: str, **kwargs: Any) -> KubePlugin:
    kwargs.setdefault("spec", PluginSpec(name=name, image=KV_IMAGE))
    kwargs.setdefault("start_timeout", 60.0)
    return KubePlugin(
        handshake=HANDSHAKE,
        plugins=PLUGINS,
        api_client=cluster.api_client(),
        access="port-forward",
        **kwargs,
    )


def gone(read: Any, name: str, namespace: str = "default") -> bool:
    try:
        read(name, namespace, _request_timeout=5)
    except k8s.ApiException as exc:
        return bool(exc.status == 404)
    return False


def model(cls: Any, body: dict[str, Any]) -> Any:
    obj = cls.from_dict(body)
    assert obj is not None
    return obj


@pytest.mark.parametrize("image", [KV_IMAGE, PY_KV_IMAGE], ids=["go-plugin", "plugwire"])
async def test_deploy_handshake_call_logs_and_kill(
    kube_cluster: KubeCluster, unique_name: str, caplog: pytest.LogCaptureFixture, image: str
) -> None:
    caplog.set_level(logging.DEBUG, logger=f"plugwire.plugin.{unique_name}")
    api = kube_cluster.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    async with kv_client(
        kube_cluster, unique_name, spec=PluginSpec(name=unique_name, image=image)
    ) as plugin:
        # what was created: a Deployment carrying the host env, an owner-referenced Service
        dep: Any = apps.read_namespaced_deployment(unique_name, "default", _request_timeout=5)
        env = {e.name: e.value for e in dep.spec.template.spec.containers[0].env}
        assert env["BASIC_PLUGIN"] == "hello"
        assert env["PLUGIN_PROTOCOL_VERSIONS"] == "1"
        assert env["PLUGIN_MIN_PORT"] == env["PLUGIN_MAX_PORT"] == "50077"
        assert env["PLUGIN_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")
        svc: Any = core.read_namespaced_service(unique_name, "default", _request_timeout=5)
        owners = svc.metadata.owner_references
        assert [(o.kind, o.name, o.uid) for o in owners] == [
            ("Deployment", unique_name, dep.metadata.uid)
        ]
        assert svc.metadata.labels[LABEL_PLUGIN] == unique_name

        # handshake read from the pod log; AutoMTLS negotiated across the port-forward
        assert plugin.announce is not None and plugin.announce.network == "tcp"
        assert plugin.announce.server_cert is not None
        assert plugin.chosen_access == "port-forward"
        assert plugin.forwarder is not None and plugin.forwarder.connections >= 1
        assert kube_cluster.runtime is not None
        assert f"default/{plugin.pod}" in kube_cluster.runtime.running()

        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="greeting", value=b"hello from python"))
        got = await kv.Get(GetRequest(key="greeting"))
        assert got.value == b"hello from python"
        await plugin.ping()

        # the plugin's hclog lines for those calls arrive through pods/log
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msgs = [
                r.getMessage() for r in caplog.records if r.name == f"plugwire.plugin.{unique_name}"
            ]
            if any(m.startswith("put") and "key=greeting" in m for m in msgs):
                break
            await anyio.sleep(0.1)
        else:
            pytest.fail(f"plugin log lines did not arrive; got {msgs}")
        put = next(r for r in caplog.records if r.getMessage().startswith("put"))
        assert put.levelno == logging.INFO
    # kill removed both objects
    assert gone(apps.read_namespaced_deployment, unique_name)
    assert gone(core.read_namespaced_service, unique_name)


async def test_discover_finds_exactly_the_labelled_plugins(kube_cluster: KubeCluster) -> None:
    api = kube_cluster.api_client()
    core = k8s.CoreV1Api(api)
    ns = "discover-test"
    core.create_namespace(model(k8s.V1Namespace, {"metadata": {"name": ns}}), _request_timeout=10)

    def service(name: str, labels: dict[str, str]) -> None:
        body = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"ports": [{"port": 50077}], "selector": {"app": name}},
        }
        core.create_namespaced_service(ns, model(k8s.V1Service, body), _request_timeout=10)

    service("alpha", {LABEL_PLUGIN: "kv"})
    service("beta", {LABEL_PLUGIN: "counter", "team": "x"})
    service("gamma", {"team": "x"})  # not a plugin
    core.create_namespaced_service(
        "default",
        model(
            k8s.V1Service,
            {
                "metadata": {"name": "other-ns", "labels": {LABEL_PLUGIN: "kv"}},
                "spec": {"ports": [{"port": 1}]},
            },
        ),
        _request_timeout=10,
    )
    try:
        found = await discover(api, ns)
        assert [(p.name, p.plugin, p.ports) for p in found] == [
            ("alpha", "kv", (50077,)),
            ("beta", "counter", (50077,)),
        ]
        assert all(p.cluster_ip for p in found)
        assert found[0].address == f"alpha.{ns}.svc:50077"
        narrowed = await discover(api, ns, f"{LABEL_PLUGIN},team=x")
        assert [p.name for p in narrowed] == ["beta"]
        assert await discover(api, ns, f"{LABEL_PLUGIN}=nothing") == []
    finally:
        core.delete_namespaced_service("other-ns", "default", _request_timeout=10)


async def test_pods_that_never_become_ready_fail_with_the_reason(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    spec = PluginSpec(name=unique_name, image=KV_IMAGE, resources={"requests": {"cpu": "4000"}})
    started = time.monotonic()
    with pytest.raises(PluginNotReadyError) as info:
        async with kv_client(kube_cluster, unique_name, spec=spec, start_timeout=10.0):
            pytest.fail("started")
    assert time.monotonic() - started < 30
    err = info.value
    text = " | ".join(err.reasons)
    assert "Unschedulable" in text or "FailedScheduling" in text, text
    assert "Insufficient cpu" in text, text
    assert err.peer == unique_name and err.step == "readiness"
    api = kube_cluster.api_client()
    assert gone(k8s.AppsV1Api(api).read_namespaced_deployment, unique_name)
    assert gone(k8s.CoreV1Api(api).read_namespaced_service, unique_name)


async def test_wrong_cookie_reports_the_plugin_log(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    client = KubePlugin(
        handshake=Handshake("BASIC_PLUGIN", "not-hello"),
        plugins=PLUGINS,
        api_client=kube_cluster.api_client(),
        spec=PluginSpec(name=unique_name, image=KV_IMAGE),
        access="port-forward",
        start_timeout=15.0,
    )
    with pytest.raises(PluginAnnounceError) as info:
        async with client:
            pytest.fail("started")
    assert "This binary is a plugin" in str(info.value)
    assert gone(k8s.AppsV1Api(kube_cluster.api_client()).read_namespaced_deployment, unique_name)


async def test_upstream_go_plugin_on_a_unix_socket_is_refused_clearly(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    spec = PluginSpec(name=unique_name, image=UPSTREAM_KV_IMAGE)
    with pytest.raises(HandshakeError) as info:
        async with kv_client(kube_cluster, unique_name, spec=spec, start_timeout=20.0):
            pytest.fail("started")
    assert "unix socket" in str(info.value) and "tcp" in str(info.value)


async def test_kill_deletes_only_what_it_created(
    kube_cluster: KubeCluster, unique_name: str
) -> None:
    api = kube_cluster.api_client()
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    theirs: Any = core.create_namespaced_service(
        "default",
        model(k8s.V1Service, {"metadata": {"name": unique_name}, "spec": {"ports": [{"port": 9}]}}),
        _request_timeout=10,
    )
    try:
        with pytest.raises(KubeAPIError) as info:
            async with kv_client(kube_cluster, unique_name):
                pytest.fail("started")
        assert info.value.status == 409 and info.value.reason == "AlreadyExists"
        still: Any = core.read_namespaced_service(unique_name, "default", _request_timeout=5)
        assert still.metadata.uid == theirs.metadata.uid
        assert gone(apps.read_namespaced_deployment, unique_name)
    finally:
        core.delete_namespaced_service(unique_name, "default", _request_timeout=10)


@contextlib.contextmanager
def flaky_proxy(target_port: int, drop_first: int) -> Iterator[tuple[int, list[int]]]:
    """A loopback TCP proxy that closes its first ``drop_first`` connections at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = [0]
    stop = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted[0] += 1
            if accepted[0] <= drop_first:
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                conn.close()  # RST: the API server is "unreachable"
                continue
            upstream = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        listener.close()
        thread.join(2)


def client_via(cluster: KubeCluster, port: int, user: str = "admin") -> Any:
    api = cluster.api_client(user)
    api.configuration.host = f"https://127.0.0.1:{port}"
    return k8s.ApiClient(configuration=api.configuration)


async def test_briefly_unreachable_api_server_is_retried(kube_cluster: KubeCluster) -> None:
    api_port = int(kube_cluster.server.rsplit(":", 1)[1])
    with flaky_proxy(api_port, drop_first=2) as (port, accepted):
        found = await discover(KubeAPI(client_via(kube_cluster, port)), "default")
        assert isinstance(found, list)
        assert accepted[0] == 3  # two refused tries, then the one that worked
    with flaky_proxy(api_port, drop_first=100) as (port, accepted):
        with pytest.raises(KubeAPIError) as info:
            await discover(KubeAPI(client_via(kube_cluster, port)), "default")
        assert info.value.retryable and info.value.attempts == 5 and info.value.status == 0
        assert accepted[0] == 5


async def test_forbidden_is_not_retried(kube_cluster: KubeCluster) -> None:
    api_port = int(kube_cluster.server.rsplit(":", 1)[1])
    with (
        flaky_proxy(api_port, drop_first=0) as (port, accepted),
        pytest.raises(KubeAPIError) as info,
    ):
        await discover(KubeAPI(client_via(kube_cluster, port, user="nobody")), "default")
    err = info.value
    assert (err.status, err.reason, err.retryable, err.attempts) == (403, "Forbidden", False, 1)
    assert accepted[0] == 1
