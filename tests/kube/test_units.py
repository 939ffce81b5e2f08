"""Announce checks and readiness explanations (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from plugwire.core.errors import HandshakeError, VersionMismatchError
from plugwire.kube import explain_not_ready, looks_like_announce, parse_announce


def test_announce_shapes() -> None:
    assert looks_like_announce("1|1|tcp|127.0.0.1:50077|grpc|")
    assert looks_like_announce("1|1|tcp|127.0.0.1:50077|grpc|MIIBx+/=|true")
    assert not looks_like_announce('{"@level":"debug","@message":"plugin address"}')
    assert not looks_like_announce("This binary is a plugin.")


def test_tcp_announce_parses_and_unix_is_refused() -> None:
    a = parse_announce("1|1|tcp|127.0.0.1:50077|grpc|", versions=(1,), peer="kv")
    assert (a.network, a.address, a.app_version, a.server_cert) == (
        "tcp",
        "127.0.0.1:50077",
        1,
        None,
    )
    with pytest.raises(HandshakeError) as info:
        parse_announce("1|1|unix|/tmp/plugin123|grpc|", versions=(1,), peer="kv")
    assert "unix socket" in str(info.value) and info.value.peer == "kv"
    with pytest.raises(VersionMismatchError):
        parse_announce("1|3|tcp|127.0.0.1:1|grpc|", versions=(1, 2), peer="kv")


def _pod(name: str, **status: Any) -> k8s.V1Pod:
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name), status=k8s.V1PodStatus(**status))


def test_explain_not_ready_collects_conditions_states_and_events() -> None:
    unschedulable = _pod(
        "kv-a",
        phase="Pending",
        conditions=[
            k8s.V1PodCondition(
                type="PodScheduled",
                status="False",
                reason="Unschedulable",
                message="0/1 nodes are available: 1 Insufficient cpu.",
            )
        ],
    )
    crashing = _pod(
        "kv-b",
        phase="Running",
        container_statuses=[
            k8s.V1ContainerStatus(
                name="kv",
                image="x",
                image_id="",
                ready=False,
                restart_count=3,
                state=k8s.V1ContainerState(
                    waiting=k8s.V1ContainerStateWaiting(
                        reason="CrashLoopBackOff", message="back-off 40s"
                    )
                ),
            )
        ],
    )
    event = k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name="e"),
        type="Warning",
        reason="FailedScheduling",
        message="0/1 nodes are available: 1 Insufficient cpu.",
        involved_object=k8s.V1ObjectReference(kind="Pod", name="kv-a"),
    )
    reasons = explain_not_ready([unschedulable, crashing], [event, event])
    assert reasons == [
        "pod kv-a: PodScheduled=False Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.",
        "pod kv-b: container kv waiting CrashLoopBackOff: back-off 40s",
        "pod kv-b: container kv restarted 3 times",
        "pod kv-a: FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu.",
    ]


def test_access_is_direct_only_inside_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from plugwire.kube import in_cluster, resolve_access
    from plugwire.kube import plugin as kube_plugin

    token = tmp_path / "token"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not in_cluster(str(token))
    assert resolve_access("auto") == "port-forward"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert not in_cluster(str(token))  # no service account token
    token.write_text("t")
    assert in_cluster(str(token))
    monkeypatch.setattr(kube_plugin, "SERVICE_ACCOUNT_TOKEN", str(token))
    monkeypatch.setattr(kube_plugin, "in_cluster", lambda: True)
    assert resolve_access("auto") == "direct"
    assert resolve_access("port-forward") == "port-forward"
    assert resolve_access("direct") == "direct"
