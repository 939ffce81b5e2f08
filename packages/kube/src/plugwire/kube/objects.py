"""The Kubernetes objects a :class:`~plugwire.kube.KubePlugin` creates, and their deletion.

A plugin is a Deployment plus a Service owner-referenced to it. Each create is stamped
with the creating plugin's random token (annotation :data:`ANNOTATION_OWNER`), so a
retried create whose first attempt did succeed (reply lost) recognises its own object.
Each delete carries the created object's UID as a precondition: an object someone else
created, or re-created under the same name, is never touched.
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any, Literal

import anyio
import attrs

from .api import KubeAPI, meta
from .errors import KubeAPIError
from .spec import PreparedPlugin

__all__ = [
    "ANNOTATION_OWNER",
    "CreatedObject",
    "create_objects",
    "delete_now",
    "delete_object",
    "wait_gone",
]

#: Annotation carrying the creating plugin's random token.
ANNOTATION_OWNER = "plugwire.io/owner-token"

Kind = Literal["Deployment", "Service"]


@attrs.frozen
class CreatedObject:
    """An object a :class:`~plugwire.kube.KubePlugin` created (and so may delete)."""

    kind: Kind
    namespace: str
    name: str
    uid: str


async def _create_one(
    api: KubeAPI, namespace: str, token: str, kind: Kind, body: dict[str, Any]
) -> CreatedObject:
    from kubernetes import client

    meta_ = body.setdefault("metadata", {})
    meta_["annotations"] = {**(meta_.get("annotations") or {}), ANNOTATION_OWNER: token}
    name = str(meta_["name"])
    if kind == "Deployment":
        create: Any = api.apps.create_namespaced_deployment
        read: Any = api.apps.read_namespaced_deployment
        model: Any = client.V1Deployment.from_dict(body)
    else:
        create = api.core.create_namespaced_service
        read = api.core.read_namespaced_service
        model = client.V1Service.from_dict(body)
    what = f"create {kind} {namespace}/{name}"
    try:
        obj = meta(await api.call(what, create, namespace, model))
    except KubeAPIError as exc:
        if exc.reason != "AlreadyExists" or exc.attempts < 2:
            raise
        obj = meta(await api.call(f"read {kind} {namespace}/{name}", read, name, namespace))
        if (obj.annotations or {}).get(ANNOTATION_OWNER) != token:
            raise
    return CreatedObject(kind, namespace, str(obj.name), str(obj.uid))


async def create_objects(
    api: KubeAPI, prepared: PreparedPlugin, token: str, created: list[CreatedObject]
) -> None:
    """Create the Deployment, then the Service owner-referenced to it.

    Each object is appended to ``created`` as soon as it exists, so that a failure
    halfway leaves the caller knowing exactly what to delete.
    """
    namespace = prepared.namespace
    dep = await _create_one(api, namespace, token, "Deployment", copy.deepcopy(prepared.deployment))
    created.append(dep)
    svc = copy.deepcopy(prepared.service)
    svc["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": dep.name,
            "uid": dep.uid,
            "blockOwnerDeletion": False,
        }
    ]
    created.append(await _create_one(api, namespace, token, "Service", svc))


def _delete_options(obj: CreatedObject) -> Any:
    from kubernetes import client

    return client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=obj.uid), propagation_policy="Background"
    )


def _delete_fn(api: KubeAPI, obj: CreatedObject) -> Any:
    if obj.kind == "Deployment":
        return api.apps.delete_namespaced_deployment
    return api.core.delete_namespaced_service


async def delete_object(api: KubeAPI, obj: CreatedObject) -> None:
    """Delete ``obj`` if it is still the object that was created (UID precondition).

    Already gone (404) or replaced by someone else's object (409) count as done.
    """
    try:
        await api.call(
            f"delete {obj.kind} {obj.namespace}/{obj.name}",
            _delete_fn(api, obj),
            obj.name,
            obj.namespace,
            body=_delete_options(obj),
        )
    except KubeAPIError as exc:
        if exc.status in (404, 409):
            return
        raise


async def wait_gone(api: KubeAPI, obj: CreatedObject, deadline: float) -> None:
    """Wait until ``obj`` no longer exists (or its name holds another UID)."""
    fn = (
        api.apps.read_namespaced_deployment
        if obj.kind == "Deployment"
        else api.core.read_namespaced_service
    )
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            current = await api.call(
                f"read {obj.kind} {obj.namespace}/{obj.name}", fn, obj.name, obj.namespace
            )
        except KubeAPIError as exc:
            if exc.status == 404:
                return
            raise
        if meta(current).uid != obj.uid:
            return
        await anyio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise KubeAPIError(
        f"{obj.kind} {obj.namespace}/{obj.name} still exists",
        status=0,
        reason="deletion timed out",
        retryable=False,
        step="close",
    )


def delete_now(api: KubeAPI, objects: list[CreatedObject]) -> None:
    """Synchronous, best-effort delete of ``objects`` (newest first), one try each.

    For when no event loop is left (interpreter exit); errors are ignored.
    """
    for obj in reversed(objects):
        with contextlib.suppress(Exception):
            _delete_fn(api, obj)(
                obj.name,
                obj.namespace,
                body=_delete_options(obj),
                _request_timeout=api.timeout,
            )
