"""Validation of plugin specs, Deployments and Services (no cluster needed)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plugwire.core.errors import ConfigError, PlugwireError
from plugwire.kube import (
    LABEL_PLUGIN,
    KubeValidationError,
    PluginSpec,
    host_env,
    prepare,
    validate_deployment,
    validate_service,
)


def deployment(**overrides: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kv"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "kv"}},
            "template": {
                "metadata": {"labels": {"app": "kv", "tier": "plugins"}},
                "spec": {
                    "containers": [
                        {
                            "name": "kv",
                            "image": "example/kv:1",
                            "ports": [{"name": "grpc", "containerPort": 7000}],
                        }
                    ]
                },
            },
        },
    }
    d.update(overrides)
    return d


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kv"},
        "spec": {"selector": {"app": "kv"}, "ports": [{"port": 7000, "targetPort": "grpc"}]},
    }


def test_valid_pair_passes_and_prepare_completes_it() -> None:
    env = host_env(
        cookie={"BASIC_PLUGIN": "hello"}, protocol_versions=[1, 2], port=0, client_cert_pem="PEM"
    )
    prepared = prepare(namespace="plugins", deployment=deployment(), service=service(), env=env)
    assert prepared.name == "kv"
    assert prepared.container_port == 7000
    assert prepared.selector == {"app": "kv"}
    container = prepared.deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "BASIC_PLUGIN": "hello",
        "PLUGIN_PROTOCOL_VERSIONS": "1,2",
        "PLUGIN_MIN_PORT": "7000",
        "PLUGIN_MAX_PORT": "7000",
        "PLUGIN_CLIENT_CERT": "PEM",
    }
    for obj in (prepared.deployment, prepared.service):
        assert obj["metadata"]["namespace"] == "plugins"
        assert obj["metadata"]["labels"][LABEL_PLUGIN] == "kv"


def test_host_env_replaces_user_values_of_the_same_name() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "BASIC_PLUGIN", "value": "forged"},
        {"name": "KEEP", "value": "me"},
    ]
    env = host_env(cookie={"BASIC_PLUGIN": "hello"}, protocol_versions=[1], port=0)
    prepared = prepare(namespace="default", deployment=d, env=env)
    got = prepared.deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e for e in got if e["name"] == "BASIC_PLUGIN"] == [
        {"name": "BASIC_PLUGIN", "value": "hello"}
    ]
    assert {"name": "KEEP", "value": "me"} in got


def test_service_derived_when_missing() -> None:
    prepared = prepare(namespace="default", deployment=deployment())
    assert prepared.service["spec"]["selector"] == {"app": "kv", "tier": "plugins"}
    assert prepared.service["spec"]["ports"][0]["targetPort"] == 7000


def test_plugin_spec_produces_valid_objects() -> None:
    spec = PluginSpec(
        name="kv",
        image="example/kv:1",
        env={"A": "1"},
        labels={"team": "x"},
        resources={"requests": {"cpu": "10m"}},
        command=["/kv"],
        args=["--v"],
    )
    prepared = prepare(namespace="default", spec=spec)
    container = prepared.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/kv"] and container["args"] == ["--v"]
    assert container["resources"] == {"requests": {"cpu": "10m"}}
    assert container["ports"][0]["containerPort"] == 50077
    assert prepared.deployment["metadata"]["labels"]["team"] == "x"
    assert prepared.service["spec"]["ports"][0]["targetPort"] == "plugin"


def test_client_models_are_accepted() -> None:
    from kubernetes import client

    model = client.V1Deployment.from_dict(deployment())
    prepared = prepare(namespace="default", deployment=model)
    assert (
        prepared.deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "example/kv:1"
    )


def _mutate(path: str, value: Any) -> dict[str, Any]:
    d = deployment()
    target: Any = d
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return d


_DELETE = object()
_C0 = "spec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("metadata.name", "KV_Plugin", "metadata.name", "DNS-1123"),
        ("metadata.name", "x" * 64, "metadata.name", "DNS-1123"),
        ("metadata.name", _DELETE, "metadata.name", "required"),
        ("spec.template.spec.containers", [], "spec.template.spec.containers", "no containers"),
        ("spec.template.spec", _DELETE, "spec.template.spec.containers", "no containers"),
        (f"{_C0}.ports", [], "spec.template.spec.containers[0].ports", "exposes no port"),
        (
            f"{_C0}.ports",
            [{"containerPort": 70000}],
            "spec.template.spec.containers[0].ports[0].containerPort",
            "invalid port",
        ),
        (f"{_C0}.image", "", "spec.template.spec.containers[0].image", "image"),
        (f"{_C0}.name", "Bad Name", "spec.template.spec.containers[0].name", "DNS-1123"),
        ("spec.selector", {"matchLabels": {"app": "other"}}, "spec.selector", "does not match"),
        ("spec.selector", {}, "spec.selector", "selector is required"),
        (
            "spec.selector",
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
            "spec.selector",
            "does not match",
        ),
        ("spec.replicas", 0, "spec.replicas", "at least one replica"),
        ("kind", "StatefulSet", "kind", "not a Deployment"),
        (
            "spec.template.metadata.labels",
            {"app": "kv", "bad key!": "x"},
            "spec.template.metadata.labels['bad key!']",
            "label key",
        ),
    ],
)
def test_bad_deployments(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(KubeValidationError) as info:
        validate_deployment(_mutate(path, value), peer="kv")
    err = info.value
    assert err.field == field
    assert words in str(err)
    assert err.peer == "kv" and err.step == "validation"
    assert isinstance(err, ConfigError) and isinstance(err, PlugwireError)


def test_selector_expressions_that_match_pass() -> None:
    d = _mutate(
        "spec.selector",
        {
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["plugins"]},
                {"key": "x", "operator": "DoesNotExist"},
            ]
        },
    )
    validate_deployment(d)


def test_duplicate_container_names() -> None:
    d = deployment()
    containers = d["spec"]["template"]["spec"]["containers"]
    containers.append(copy.deepcopy(containers[0]))
    with pytest.raises(KubeValidationError, match="duplicate container name"):
        validate_deployment(d)


def test_named_plugin_container_must_exist() -> None:
    with pytest.raises(KubeValidationError, match="no container with that name"):
        validate_deployment(deployment(), container="sidecar")


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda s: s["metadata"].update(name="1kv"), "metadata.name", "DNS-1035"),
        (lambda s: s["spec"].update(ports=[]), "spec.ports", "no ports"),
        (lambda s: s["spec"].update(selector={"app": "other"}), "spec.selector", "does not match"),
        (lambda s: s["spec"].update(selector=None), "spec.selector", "selector is required"),
        (
            lambda s: s["spec"]["ports"][0].update(targetPort="http"),
            "spec.ports[0].targetPort",
            "names no container port",
        ),
        (
            lambda s: s["spec"]["ports"][0].update(targetPort=8080),
            "spec.ports[0].targetPort",
            "not a port of any container",
        ),
        (lambda s: s["spec"]["ports"][0].update(port=0), "spec.ports[0].port", "invalid port"),
    ],
)
def test_bad_services(mutate: Any, field: str, words: str) -> None:
    s = service()
    mutate(s)
    with pytest.raises(KubeValidationError) as info:
        validate_service(s, deployment())
    assert info.value.field == field
    assert words in str(info.value)


def test_prepare_config_errors() -> None:
    spec = PluginSpec(name="kv", image="x")
    with pytest.raises(KubeValidationError, match="either a PluginSpec or a Deployment"):
        prepare(namespace="default")
    with pytest.raises(KubeValidationError, match="either a PluginSpec or a Deployment"):
        prepare(namespace="default", spec=spec, deployment=deployment())
    with pytest.raises(KubeValidationError, match="DNS-1123"):
        prepare(namespace="Default", spec=spec)
    with pytest.raises(KubeValidationError, match="DNS-1035"):
        prepare(namespace="default", spec=PluginSpec(name="9kv", image="x"))
    d = deployment()
    d["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(KubeValidationError, match="namespace differs"):
        prepare(namespace="default", deployment=d)
