"""Validation of plugin Deployments and Services before anything reaches the API server.

Objects are plain JSON-shaped dicts (``camelCase`` keys, as the API serves them);
:func:`to_dict` turns ``kubernetes.client`` models (``V1Deployment``...) into that
shape. Every failure is a :class:`~plugwire.kube.errors.KubeValidationError` whose
``field`` is the path of the offending value (``spec.template.spec.containers[0].ports``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import KubeValidationError

__all__ = [
    "check_dns1035_label",
    "check_dns1123_label",
    "check_dns1123_subdomain",
    "plugin_container",
    "selector_matches",
    "to_dict",
    "validate_deployment",
    "validate_service",
]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def to_dict(obj: object) -> dict[str, Any]:
    """A JSON-shaped dict of ``obj``: dicts are deep-copied, client models serialised."""
    if isinstance(obj, Mapping):
        import copy

        return copy.deepcopy(dict(obj))
    from kubernetes.client import ApiClient

    data = ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        raise KubeValidationError(
            "not a Kubernetes object",
            field="<object>",
            expected="a dict or client model",
            seen=type(obj).__name__,
        )
    return data


def check_dns1123_label(value: object, field: str) -> str:
    """``value`` as a DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63)."""
    if not isinstance(value, str) or not value:
        raise KubeValidationError(
            "name is required", field=field, expected="a DNS-1123 label", seen=value
        )
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise KubeValidationError(
            "not a DNS-1123 label",
            field=field,
            expected="<= 63 lower-case alphanumerics or '-', alphanumeric at both ends",
            seen=value,
        )
    return value


def check_dns1035_label(value: object, field: str) -> str:
    """``value`` as a DNS-1035 label (a DNS-1123 label starting with a letter): Service names."""
    check_dns1123_label(value, field)
    assert isinstance(value, str)
    if not _DNS1035_LABEL.match(value):
        raise KubeValidationError(
            "not a DNS-1035 label",
            field=field,
            expected="a DNS-1123 label starting with a letter",
            seen=value,
        )
    return value


def check_dns1123_subdomain(value: object, field: str) -> str:
    """``value`` as a DNS-1123 subdomain (dot-separated labels, at most 253)."""
    if not isinstance(value, str) or not value:
        raise KubeValidationError(
            "name is required", field=field, expected="a DNS-1123 subdomain", seen=value
        )
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise KubeValidationError(
            "not a DNS-1123 subdomain",
            field=field,
            expected="lower-case alphanumerics, '-' and '.', <= 253 chars",
            seen=value,
        )
    return value


def _check_labels(labels: object, field: str) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise KubeValidationError("labels must be a mapping", field=field, seen=labels)
    for key, value in labels.items():
        name = str(key).rsplit("/", 1)[-1]
        prefix = str(key)[: -len(name) - 1] if "/" in str(key) else ""
        if (
            len(name) > 63
            or not _LABEL_NAME.match(name)
            or (prefix and not _DNS1123_SUBDOMAIN.match(prefix))
        ):
            raise KubeValidationError("invalid label key", field=f"{field}[{key!r}]", seen=key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise KubeValidationError(
                "invalid label value",
                field=f"{field}[{key!r}]",
                expected="<= 63 alphanumerics, '-', '_' or '.'",
                seen=value,
            )
    return {str(k): str(v) for k, v in labels.items()}


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` (``matchLabels`` + ``matchExpressions``) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plugin_container(deployment: Mapping[str, Any], container: str | None = None) -> dict[str, Any]:
    """The container that runs the plugin: the one named ``container``, else the first."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    if container is None:
        return dict(containers[0])
    for c in containers:
        if c.get("name") == container:
            return dict(c)
    raise KubeValidationError(
        "no container with that name",
        field="spec.template.spec.containers",
        expected=f"a container named {container!r}",
        seen=[c.get("name") for c in containers],
    )


def _check_port(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise KubeValidationError(
            "invalid port", field=field, expected="an integer 1..65535", seen=value
        )
    return value


def validate_deployment(
    deployment: Mapping[str, Any], *, container: str | None = None, peer: str | None = None
) -> None:
    """Check a plugin Deployment: names, selector vs. pod labels, containers and ports.

    Raises :class:`KubeValidationError` for: a missing or non-DNS-1123 ``metadata.name``;
    ``kind``/``apiVersion`` other than ``Deployment``/``apps/v1``; ``replicas`` < 1; a
    missing or empty ``spec.selector``; a selector that does not select
    ``spec.template.metadata.labels``; no containers; a container without a valid
    name or an image; duplicate container names; a plugin container without any
    ``containerPort``; ports outside 1..65535; invalid labels or env names.
    """
    try:
        _validate_deployment(deployment, container)
    except KubeValidationError as exc:
        exc.peer = exc.peer or peer
        raise


def _validate_deployment(d: Mapping[str, Any], container: str | None) -> None:
    if not isinstance(d, Mapping):
        raise KubeValidationError("the Deployment is missing", field="<deployment>", seen=d)
    if d.get("kind") not in (None, "Deployment"):
        raise KubeValidationError(
            "not a Deployment", field="kind", expected="Deployment", seen=d.get("kind")
        )
    if d.get("apiVersion") not in (None, "apps/v1"):
        raise KubeValidationError(
            "unsupported apiVersion",
            field="apiVersion",
            expected="apps/v1",
            seen=d.get("apiVersion"),
        )
    meta = d.get("metadata") or {}
    check_dns1123_label(meta.get("name"), "metadata.name")
    if meta.get("namespace") is not None:
        check_dns1123_label(meta["namespace"], "metadata.namespace")
    _check_labels(meta.get("labels"), "metadata.labels")
    spec = d.get("spec")
    if not isinstance(spec, Mapping):
        raise KubeValidationError("spec is required", field="spec", seen=spec)
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 1):
        raise KubeValidationError(
            "a plugin needs at least one replica",
            field="spec.replicas",
            expected=">= 1",
            seen=replicas,
        )
    selector = spec.get("selector")
    if not isinstance(selector, Mapping) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        raise KubeValidationError(
            "a selector is required",
            field="spec.selector",
            expected="matchLabels or matchExpressions",
            seen=selector,
        )
    _check_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
    template = spec.get("template") or {}
    labels = _check_labels(
        (template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels"
    )
    if not selector_matches(selector, labels):
        raise KubeValidationError(
            "the selector does not match the pod template labels",
            field="spec.selector",
            expected=f"a selector matching {labels}",
            seen=dict(selector),
        )
    pod = template.get("spec")
    containers = (pod or {}).get("containers") if isinstance(pod, Mapping) else None
    if not containers:
        raise KubeValidationError(
            "the pod template has no containers",
            field="spec.template.spec.containers",
            expected="at least one container",
            seen=containers,
        )
    names: set[str] = set()
    for i, c in enumerate(containers):
        path = f"spec.template.spec.containers[{i}]"
        name = check_dns1123_label((c or {}).get("name"), f"{path}.name")
        if name in names:
            raise KubeValidationError("duplicate container name", field=f"{path}.name", seen=name)
        names.add(name)
        if not c.get("image"):
            raise KubeValidationError(
                "an image is required", field=f"{path}.image", seen=c.get("image")
            )
        for j, port in enumerate(c.get("ports") or []):
            _check_port((port or {}).get("containerPort"), f"{path}.ports[{j}].containerPort")
        for j, env in enumerate(c.get("env") or []):
            env_name = (env or {}).get("name")
            if not isinstance(env_name, str) or not _ENV_NAME.match(env_name):
                raise KubeValidationError(
                    "invalid env name", field=f"{path}.env[{j}].name", seen=env_name
                )
    main = plugin_container(d, container)
    index = [c.get("name") for c in containers].index(main.get("name"))
    if not main.get("ports"):
        raise KubeValidationError(
            "the plugin container exposes no port",
            field=f"spec.template.spec.containers[{index}].ports",
            expected="at least one containerPort (the plugin's gRPC port)",
            seen=main.get("ports"),
        )


def validate_service(
    service: Mapping[str, Any], deployment: Mapping[str, Any], *, peer: str | None = None
) -> None:
    """Check a plugin Service against its (valid) Deployment.

    Raises :class:`KubeValidationError` for: a missing or non-DNS-1035 name; a kind
    other than ``Service``; no ports; ports outside 1..65535; a ``targetPort`` that no
    container of the Deployment exposes (by number or by name); a missing selector,
    or one that does not select the Deployment's pod template labels.
    """
    try:
        _validate_service(service, deployment)
    except KubeValidationError as exc:
        exc.peer = exc.peer or peer
        raise


def _validate_service(s: Mapping[str, Any], d: Mapping[str, Any]) -> None:
    if not isinstance(s, Mapping):
        raise KubeValidationError("the Service is missing", field="<service>", seen=s)
    if s.get("kind") not in (None, "Service"):
        raise KubeValidationError(
            "not a Service", field="kind", expected="Service", seen=s.get("kind")
        )
    meta = s.get("metadata") or {}
    check_dns1035_label(meta.get("name"), "metadata.name")
    _check_labels(meta.get("labels"), "metadata.labels")
    spec = s.get("spec") or {}
    ports = spec.get("ports")
    if not ports:
        raise KubeValidationError(
            "the Service has no ports", field="spec.ports", expected="at least one port", seen=ports
        )
    containers = d["spec"]["template"]["spec"]["containers"]
    numbers = {p.get("containerPort") for c in containers for p in (c.get("ports") or [])}
    named = {p.get("name") for c in containers for p in (c.get("ports") or []) if p.get("name")}
    for i, port in enumerate(ports):
        _check_port((port or {}).get("port"), f"spec.ports[{i}].port")
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str) and not target.isdigit():
            if target not in named:
                raise KubeValidationError(
                    "targetPort names no container port",
                    field=f"spec.ports[{i}].targetPort",
                    expected=f"one of {sorted(named)}",
                    seen=target,
                )
        elif int(target) not in numbers:
            raise KubeValidationError(
                "targetPort is not a port of any container",
                field=f"spec.ports[{i}].targetPort",
                expected=f"one of {sorted(n for n in numbers if n)}",
                seen=target,
            )
    selector = spec.get("selector")
    labels = (d["spec"]["template"].get("metadata") or {}).get("labels") or {}
    if not selector:
        raise KubeValidationError(
            "a selector is required",
            field="spec.selector",
            expected=f"a subset of {labels}",
            seen=selector,
        )
    _check_labels(selector, "spec.selector")
    if not selector_matches({"matchLabels": selector}, labels):
        raise KubeValidationError(
            "the selector does not match the Deployment's pod labels",
            field="spec.selector",
            expected=f"a subset of {labels}",
            seen=dict(selector),
        )


def _names(items: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(i.get("name")) for i in items]
