"""Waiting for a plugin's pods to become ready, and explaining why they do not."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from .api import KubeAPI
from .errors import KubeAPIError, PluginNotReadyError

__all__ = ["explain_not_ready", "pod_is_ready", "wait_ready"]

#: Waiting reasons that cannot heal without a change to the spec: fail at once.
FATAL_WAITING = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"}
)


def _selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _line(head: str, reason: str | None, message: str | None) -> str:
    text = head
    if reason:
        text += f" {reason}"
    if message:
        text += f": {message.strip()}"
    return text


def pod_is_ready(pod: Any) -> bool:
    """A pod that is running, not terminating, with condition ``Ready=True``."""
    if pod.metadata.deletion_timestamp is not None or pod.status is None:
        return False
    if pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def explain_not_ready(
    pods: Sequence[Any], events: Sequence[Any], deployment: Any = None
) -> list[str]:
    """Human-readable reasons why ``pods`` are not ready.

    From pod conditions that are not ``True`` (with reason and message), container
    states (waiting reason/message, terminated reason/exit code, restarts), warning
    events about the pods, the Deployment or its ReplicaSets, and the Deployment's
    failing conditions (``ReplicaFailure``...).
    """
    reasons: list[str] = []
    for pod in pods:
        name = pod.metadata.name
        status = pod.status
        if status is None:
            reasons.append(f"pod {name}: no status yet")
            continue
        for cond in status.conditions or []:
            if cond.status != "True" and (cond.reason or cond.message):
                reasons.append(
                    _line(f"pod {name}: {cond.type}={cond.status}", cond.reason, cond.message)
                )
        for cs in list(status.init_container_statuses or []) + list(
            status.container_statuses or []
        ):
            state = cs.state
            if state is not None and state.waiting is not None:
                w = state.waiting
                reasons.append(
                    _line(f"pod {name}: container {cs.name} waiting", w.reason, w.message)
                )
            if state is not None and state.terminated is not None:
                t = state.terminated
                reasons.append(
                    _line(
                        f"pod {name}: container {cs.name} terminated",
                        f"{t.reason or 'exited'} (exit code {t.exit_code})",
                        t.message,
                    )
                )
            if cs.restart_count:
                reasons.append(
                    f"pod {name}: container {cs.name} restarted {cs.restart_count} times"
                )
        if not reasons or not any(r.startswith(f"pod {name}:") for r in reasons):
            reasons.append(f"pod {name}: phase {status.phase}")
    if deployment is not None and deployment.status is not None:
        for cond in deployment.status.conditions or []:
            if cond.type == "ReplicaFailure" or (
                cond.type == "Available" and cond.status != "True" and not pods
            ):
                reasons.append(
                    _line(f"deployment: {cond.type}={cond.status}", cond.reason, cond.message)
                )
    seen: set[str] = set()
    for ev in events:
        if ev.type == "Normal" and ev.reason not in ("FailedScheduling", "BackOff"):
            continue
        obj = ev.involved_object
        text = f"{(obj.kind or '').lower()} {obj.name}: {ev.reason}: {(ev.message or '').strip()}"
        if text not in seen:
            seen.add(text)
            reasons.append(text)
    return reasons


async def _snapshot(
    api: KubeAPI, namespace: str, deployment: str, selector: Mapping[str, str]
) -> tuple[list[Any], Any]:
    pods = await api.call(
        f"list pods {namespace}/{_selector_text(selector)}",
        api.core.list_namespaced_pod,
        namespace,
        label_selector=_selector_text(selector),
    )
    dep = await api.call(
        f"read Deployment {namespace}/{deployment}",
        api.apps.read_namespaced_deployment_status,
        deployment,
        namespace,
    )
    return list(pods.items), dep


async def _events(api: KubeAPI, namespace: str, names: Sequence[str]) -> list[Any]:
    events: list[Any] = []
    for name in names:
        try:
            found = await api.call(
                f"list events for {namespace}/{name}",
                api.core.list_namespaced_event,
                namespace,
                field_selector=f"involvedObject.name={name}",
            )
        except KubeAPIError:
            continue
        events.extend(found.items)
    events.sort(
        key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp or "")
    )
    return events


async def wait_ready(
    api: KubeAPI,
    namespace: str,
    deployment: str,
    selector: Mapping[str, str],
    *,
    timeout: float,
    peer: str | None = None,
) -> Any:
    """Wait until a pod of the Deployment is ready and return it (a ``V1Pod``).

    Polls (50 ms growing to 1 s). On timeout raises :class:`PluginNotReadyError`
    whose ``reasons`` come from :func:`explain_not_ready`; a container stuck in a
    waiting state that cannot heal (``InvalidImageName``, ``CreateContainerConfigError``...)
    fails at once with the same error.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        pods, dep = await _snapshot(api, namespace, deployment, selector)
        ready = [p for p in pods if pod_is_ready(p)]
        if ready:
            ready.sort(key=lambda p: str(p.metadata.creation_timestamp), reverse=True)
            return ready[0]
        fatal = [
            cs
            for p in pods
            for cs in (p.status.container_statuses or [])
            if p.status is not None
            if cs.state is not None
            and cs.state.waiting is not None
            and cs.state.waiting.reason in FATAL_WAITING
        ]
        if fatal or time.monotonic() >= deadline:
            names = [p.metadata.name for p in pods] + [deployment]
            rs_names = {
                ref.name
                for p in pods
                for ref in (p.metadata.owner_references or [])
                if ref.kind == "ReplicaSet"
            }
            events = await _events(api, namespace, [*names, *sorted(rs_names)])
            reasons = explain_not_ready(pods, events, dep)
            raise PluginNotReadyError(
                "plugin pods did not become ready"
                + (" (a container cannot start)" if fatal else f" within {timeout:g}s"),
                reasons=reasons,
                peer=peer,
                timeout=timeout,
            )
        await anyio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 1.0)
