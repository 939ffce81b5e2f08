"""What to deploy: a :class:`PluginSpec`, or a user Deployment + Service, plus the host env.

:func:`prepare` turns either form into the validated pair of objects plugwire
creates, with the labels plugwire uses to find its plugins and the environment a
go-plugin plugin needs to start (magic cookie, negotiation, port, AutoMTLS cert).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .validation import (
    check_dns1035_label,
    check_dns1123_label,
    plugin_container,
    to_dict,
    validate_deployment,
    validate_service,
)

__all__ = [
    "DEFAULT_PORT",
    "LABEL_MANAGED_BY",
    "LABEL_PLUGIN",
    "PluginSpec",
    "PreparedPlugin",
    "host_env",
    "prepare",
]

#: go-plugin intercom's ``DefaultServerPort``.
DEFAULT_PORT = 50077
#: Label on the Deployment, its pods and the Service naming the plugin; what
#: :func:`plugwire.kube.discover` selects by default.
LABEL_PLUGIN = "plugwire.io/plugin"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
PORT_NAME = "plugin"


def _str_map(value: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _str_tuple(value: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in (value or ()))


@attrs.frozen
class PluginSpec:
    """A plugin to run as a one-container Deployment behind a ClusterIP Service.

    ``name`` must be a DNS-1035 label (it names the Deployment, the Service and the
    container). ``port`` is the container port the plugin listens on (go-plugin's
    ``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT`` are pinned to it). ``resources`` is a
    ``ResourceRequirements`` dict (``{"requests": {"cpu": "100m"}}``).
    """

    name: str
    image: str
    command: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    args: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    port: int = DEFAULT_PORT
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    resources: Mapping[str, Any] | None = None
    replicas: int = 1
    node_selector: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    service_account: str | None = None
    image_pull_policy: str | None = None

    def deployment(self) -> dict[str, Any]:
        """The Deployment for this spec (before host env injection)."""
        check_dns1035_label(self.name, "name")
        labels = {**self.labels, LABEL_PLUGIN: self.name}
        container: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "ports": [{"name": PORT_NAME, "containerPort": self.port, "protocol": "TCP"}],
            "env": [{"name": k, "value": v} for k, v in self.env.items()],
        }
        if self.command:
            container["command"] = list(self.command)
        if self.args:
            container["args"] = list(self.args)
        if self.resources:
            container["resources"] = copy.deepcopy(dict(self.resources))
        if self.image_pull_policy:
            container["imagePullPolicy"] = self.image_pull_policy
        pod: dict[str, Any] = {"containers": [container]}
        if self.node_selector:
            pod["nodeSelector"] = dict(self.node_selector)
        if self.service_account:
            pod["serviceAccountName"] = self.service_account
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name, "labels": dict(labels)},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {LABEL_PLUGIN: self.name}},
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
            },
        }

    def service(self) -> dict[str, Any]:
        """The ClusterIP Service in front of the Deployment's pods."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": self.name, "labels": {**self.labels, LABEL_PLUGIN: self.name}},
            "spec": {
                "type": "ClusterIP",
                "selector": {LABEL_PLUGIN: self.name},
                "ports": [
                    {
                        "name": PORT_NAME,
                        "port": self.port,
                        "targetPort": PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        }


def host_env(
    *,
    cookie: Mapping[str, str],
    protocol_versions: Sequence[int],
    port: int,
    client_cert_pem: str | None = None,
) -> dict[str, str]:
    """The environment a go-plugin host gives its plugin, for a plugin in a pod.

    The magic cookie, ``PLUGIN_PROTOCOL_VERSIONS``, ``PLUGIN_MIN_PORT`` and
    ``PLUGIN_MAX_PORT`` pinned to the container port, and ``PLUGIN_CLIENT_CERT``
    (AutoMTLS) when a client certificate is given.
    """
    env = dict(cookie)
    env["PLUGIN_PROTOCOL_VERSIONS"] = ",".join(str(v) for v in protocol_versions)
    env["PLUGIN_MIN_PORT"] = env["PLUGIN_MAX_PORT"] = str(port)
    if client_cert_pem:
        env["PLUGIN_CLIENT_CERT"] = client_cert_pem
    return env


@attrs.frozen
class PreparedPlugin:
    """The validated objects to create, and where the plugin listens."""

    name: str
    namespace: str
    deployment: dict[str, Any]
    service: dict[str, Any]
    container: str
    container_port: int
    selector: dict[str, str]


def _merge_env(container: dict[str, Any], env: Mapping[str, str]) -> None:
    kept = [e for e in container.get("env") or [] if e.get("name") not in env]
    container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]


def prepare(
    *,
    namespace: str,
    spec: PluginSpec | None = None,
    deployment: object = None,
    service: object = None,
    container: str | None = None,
    env: Mapping[str, str] | None = None,
    peer: str | None = None,
) -> PreparedPlugin:
    """Validate and complete what to deploy.

    Give either ``spec`` or ``deployment`` (+ optional ``service``; one is derived from
    the plugin container's first port when missing). ``env`` (see :func:`host_env`) is
    injected into the plugin container, replacing entries of the same name;
    ``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT`` are set to that container's first port.
    The plugin label is added where missing. Raises
    :class:`~plugwire.kube.errors.KubeValidationError`.
    """
    from .errors import KubeValidationError

    check_dns1123_label(namespace, "namespace")
    if (spec is None) == (deployment is None):
        raise KubeValidationError(
            "give either a PluginSpec or a Deployment",
            field="<config>",
            expected="exactly one of spec, deployment",
            seen="both" if spec is not None else "neither",
            peer=peer,
        )
    if spec is not None:
        if service is not None:
            raise KubeValidationError(
                "a Service comes from the PluginSpec; pass a Deployment to give your own",
                field="<config>",
                seen="spec and service",
                peer=peer,
            )
        dep = spec.deployment()
        svc: dict[str, Any] | None = spec.service()
    else:
        dep = to_dict(deployment)
        svc = to_dict(service) if service is not None else None
    validate_deployment(dep, container=container, peer=peer)
    name = dep["metadata"]["name"]
    main = plugin_container(dep, container)
    port = int(main["ports"][0]["containerPort"])
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    if svc is None:
        check_dns1035_label(name, "metadata.name")
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {LABEL_PLUGIN: name}},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(pod_labels),
                "ports": [{"name": PORT_NAME, "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        }
    validate_service(svc, dep, peer=peer)
    for obj in (dep, svc):
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, namespace):
            raise KubeValidationError(
                "object namespace differs from the client's",
                field="metadata.namespace",
                expected=namespace,
                seen=meta["namespace"],
                peer=peer,
            )
        meta["namespace"] = namespace
        labels = meta.setdefault("labels", {}) or {}
        labels.setdefault(LABEL_PLUGIN, name)
        labels.setdefault(LABEL_MANAGED_BY, "plugwire")
        meta["labels"] = labels
    containers = dep["spec"]["template"]["spec"]["containers"]
    target = next(c for c in containers if c["name"] == main["name"])
    if env:
        merged = dict(env)
        if "PLUGIN_MIN_PORT" in merged:
            merged["PLUGIN_MIN_PORT"] = merged["PLUGIN_MAX_PORT"] = str(port)
        _merge_env(target, merged)
    return PreparedPlugin(
        name=name,
        namespace=namespace,
        deployment=dep,
        service=svc,
        container=str(main["name"]),
        container_port=port,
        selector=dict(svc["spec"]["selector"]),
    )
