"""The harness itself, proved with the Go comparison provider: the real terraform CLI
(built from the module proxy) drives ``terraform-provider-example`` through a dev
override and a filesystem mirror, and a plugwire host drives the same provider over
tfplugin6 with Terraform's handshake."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from terraform_support import (
    EXAMPLE_ADDRESS,
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    MIRROR_VERSION,
    TERRAFORM_VERSION,
    WorkspaceFactory,
    required_providers,
)

pytestmark = pytest.mark.interop

#: plugwire's example provider (plugwire.grpc.terraform.examples.thing), as the command
#: the real terraform CLI launches; the same shape as the Go comparison provider.
PYTHON_PROVIDER = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]


@pytest.fixture(params=["go", "python"])
def provider(request: pytest.FixtureRequest, go_provider: Path) -> Path | list[str]:
    """Each lifecycle test runs against the Go framework provider and plugwire's."""
    return go_provider if request.param == "go" else PYTHON_PROVIDER


THING = required_providers() + (
    'resource "example_thing" "a" {\n'
    '  name = "alpha"\n'
    '  tags = { team = "core" }\n'
    '  secret = "hunter2"\n'
    "}\n"
)


def _change(plan: dict[str, Any], address: str) -> dict[str, Any]:
    for rc in plan.get("resource_changes", []):
        if rc["address"] == address:
            change: dict[str, Any] = rc["change"]
            return change
    raise AssertionError(f"no change for {address} in the plan: {plan.get('resource_changes')}")


def test_terraform_cli_is_the_pinned_release_without_remote_state_backends(
    terraform_workspace: WorkspaceFactory, go_provider: Path
) -> None:
    ws = terraform_workspace(go_provider)
    version = ws.run("version", "-json").json()
    assert version["terraform_version"] == TERRAFORM_VERSION
    # The remote-state backends are stand-ins: selecting one fails with a diagnostic.
    ws.write('terraform {\n  backend "s3" {}\n}\n')
    result = ws.fails("init", "-input=false", "-no-color")
    assert "Backend not available in this build" in result.output
    assert '"s3" backend is not available' in " ".join(result.output.split())


def test_terraform_providers_schema_lists_the_provider(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(THING)
    schema = ws.providers_schema()["provider_schemas"][EXAMPLE_ADDRESS]
    attrs = schema["resource_schemas"]["example_thing"]["block"]["attributes"]
    assert set(attrs) == {"id", "name", "size", "tags", "secret", "created", "password_wo", "label"}
    assert attrs["name"]["required"] is True
    assert attrs["id"]["computed"] is True and not attrs["id"].get("optional")
    assert attrs["size"]["type"] == "number" and attrs["size"]["optional"] is True
    assert attrs["tags"]["type"] == ["map", "string"]
    assert attrs["secret"]["sensitive"] is True
    echo = schema["data_source_schemas"]["example_echo"]["block"]["attributes"]
    assert echo["input"]["required"] is True and echo["output"]["computed"] is True
    upper = schema["functions"]["upper"]
    assert upper["return_type"] == "string"
    assert [p["type"] for p in upper["parameters"]] == ["string"]


def test_terraform_plan_apply_update_replace_destroy(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(THING)

    plan = ws.plan_json()
    change = _change(plan, "example_thing.a")
    assert change["actions"] == ["create"]
    assert change["after"]["name"] == "alpha" and change["after"]["size"] == 1
    assert change["after_unknown"]["created"] is True  # unknown until apply
    assert change["after_unknown"]["id"] is True
    assert change["after_sensitive"]["secret"] is True

    ws.apply()
    thing = ws.resources()["example_thing.a"]
    assert thing["id"] == "thing-alpha"
    assert thing["size"] == 1 and thing["tags"] == {"team": "core"}
    assert thing["secret"] == "hunter2" and thing["created"]
    created = thing["created"]
    assert ws.has_changes() is False  # plan again: no changes

    ws.write(THING.replace('name = "alpha"', 'name = "alpha"\n  size = 3'))
    change = _change(ws.plan_json(), "example_thing.a")
    assert change["actions"] == ["update"]  # in place; id kept by UseStateForUnknown
    assert change["after"]["id"] == "thing-alpha"
    ws.apply()
    thing = ws.resources()["example_thing.a"]
    assert thing["size"] == 3 and thing["created"] == created

    ws.write(THING.replace('"alpha"', '"beta"'))
    change = _change(ws.plan_json(), "example_thing.a")
    assert change["actions"] == ["delete", "create"]  # name requires replacement
    ws.apply()
    assert ws.resources()["example_thing.a"]["id"] == "thing-beta"

    ws.destroy()
    assert ws.resources() == {}
    assert ws.has_changes() is True  # the config still wants the thing


def test_terraform_data_source_and_function(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    # The provider given as a command (how Python providers are passed): a wrapper script.
    ws = terraform_workspace([str(provider)] if isinstance(provider, Path) else provider)
    ws.write(
        required_providers()
        + 'data "example_echo" "e" {\n  input = "hello"\n}\n'
        + 'output "echo" {\n  value = data.example_echo.e.output\n}\n'
        + 'output "upper" {\n  value = provider::example::upper("shout")\n}\n'
    )
    ws.apply()
    assert ws.outputs() == {"echo": "hello", "upper": "SHOUT"}


def test_terraform_init_installs_the_go_provider_from_a_filesystem_mirror(
    terraform_workspace: WorkspaceFactory, go_provider: Path
) -> None:
    ws = terraform_workspace(go_provider, install="mirror")
    ws.write(THING)
    ws.init()
    lock = (ws.dir / ".terraform.lock.hcl").read_text()
    assert f'provider "{EXAMPLE_ADDRESS}"' in lock
    assert re.search(rf'version\s*=\s*"{re.escape(MIRROR_VERSION)}"', lock), lock
    ws.apply()
    assert ws.resources()["example_thing.a"]["id"] == "thing-alpha"
    assert ws.has_changes() is False


def test_terraform_import_into_the_go_provider(
    terraform_workspace: WorkspaceFactory, go_provider: Path
) -> None:
    ws = terraform_workspace(go_provider)
    ws.write(required_providers() + 'resource "example_thing" "a" {\n  name = "gamma"\n}\n')
    ws.run("import", "-input=false", "-no-color", "example_thing.a", "thing-gamma")
    thing = ws.resources()["example_thing.a"]
    assert thing["name"] == "gamma" and thing["created"] == "imported"
    assert ws.has_changes() is False
    bad = ws.fails("import", "-input=false", "-no-color", "example_thing.a", "nope")
    assert "Invalid import id" in bad.output


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_plugwire_host_drives_the_go_provider_over_tfplugin6(go_provider: Path) -> None:
    from plugwire.core.handshake import Handshake
    from plugwire.grpc.goplugin import ClientConfig, PluginClient
    from plugwire.grpc.goplugin.plugin import ServicePlugin
    from plugwire.grpc.terraform._generated import tfplugin6_pb2 as pb
    from plugwire.grpc.terraform._generated import tfplugin6_pb2_grpc as pb_grpc

    cfg = ClientConfig(
        handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, protocol_versions=(6,)),
        plugins={"provider": ServicePlugin(stub=pb_grpc.ProviderStub)},
        cmd=[str(go_provider)],
        auto_mtls=True,  # as terraform launches providers
        start_timeout=30,
    )
    async with PluginClient(cfg) as client:
        assert client.negotiated_version == 6
        provider: Any = client.dispense("provider")
        schema = await provider.GetProviderSchema(pb.GetProviderSchema.Request())
        assert not schema.diagnostics
        thing = schema.resource_schemas["example_thing"].block
        attrs = {a.name: a for a in thing.attributes}
        assert set(attrs) == {
            "id",
            "name",
            "size",
            "tags",
            "secret",
            "created",
            "password_wo",
            "label",
        }
        assert attrs["name"].required and attrs["secret"].sensitive
        assert attrs["tags"].type == b'["map","string"]'
        assert "example_echo" in schema.data_source_schemas
        assert "upper" in schema.functions

        meta = await provider.GetMetadata(pb.GetMetadata.Request())
        assert [r.type_name for r in meta.resources] == ["example_thing"]
        # upper("abc"): arguments and result are cty msgpack (a fixstr: 0xa0 | length).
        called = await provider.CallFunction(
            pb.CallFunction.Request(name="upper", arguments=[pb.DynamicValue(msgpack=b"\xa3abc")])
        )
        assert not called.HasField("error"), called.error.text
        assert called.result.msgpack == b"\xa3ABC"
    assert client.exited
