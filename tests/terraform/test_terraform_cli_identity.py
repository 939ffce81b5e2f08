"""Issue 21 (core) with the real terraform CLI v1.16.4, against plugwire's example
provider and the terraform-plugin-framework provider of the same shape:

* import by identity (an ``import`` block with ``identity = {...}``) with
  ``plan -generate-config-out`` (GenerateResourceConfig) and the identity in the state;
* a write-only attribute that reaches the provider but never the plan or state file;
* a deprecated attribute's warning;
* a deferred plan (``plan -allow-deferral``, an experiments build) while the provider's
  configuration is unknown;
* ``providers schema -json`` of both providers compared field by field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from core_support import PYTHON_PROVIDER, flat, schema_diff, terraform_experiments_binary
from terraform_support import (
    EXAMPLE_ADDRESS,
    Workspace,
    WorkspaceFactory,
    required_providers,
)

pytestmark = pytest.mark.interop


@pytest.fixture(params=["python", "go"])
def provider(request: pytest.FixtureRequest) -> Path | list[str]:
    if request.param == "go":
        go: Path = request.getfixturevalue("go_provider")
        return go
    return PYTHON_PROVIDER


IMPORT_BY_IDENTITY = (
    required_providers()
    + """
import {
  to       = example_thing.a
  identity = { name = "gamma" }
}
"""
)


def test_terraform_import_by_identity_with_generated_config(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(IMPORT_BY_IDENTITY)
    plan = ws.plan("-generate-config-out=generated.tf")
    assert "1 to import" in plan.stdout, plan.output
    generated = (ws.dir / "generated.tf").read_text()
    # GenerateResourceConfig: configurable values only; id and created are computed-only,
    # label deprecated, password_wo write-only, size = 1 and null values stay.
    assert 'resource "example_thing" "a"' in generated, generated
    lines = dict(re.findall(r"^  (\w+)\s+= (.*)$", generated, re.MULTILINE))
    assert lines["name"] == '"gamma"' and lines["size"] == "1", generated
    assert lines["password_wo"].startswith("null") and lines["tags"] == "null", generated
    assert not {"id", "created", "label"} & set(lines), generated
    ws.apply()
    state = json.loads(ws.state_file.read_text())
    (instance,) = state["resources"][0]["instances"]
    assert instance["identity"] == {"name": "gamma"}
    assert instance["identity_schema_version"] == 0
    thing = ws.resources()["example_thing.a"]
    assert thing["id"] == "thing-gamma" and thing["created"] == "imported"
    assert ws.has_changes() is False  # the generated configuration matches

    # A required identity attribute left out: a diagnostic naming it.
    ws.write(
        IMPORT_BY_IDENTITY.replace("example_thing.a", "example_thing.b").replace(
            '{ name = "gamma" }', "{}"
        )
    )
    bad = ws.fails("plan", "-input=false", "-no-color", "-generate-config-out=b.tf")
    assert 'attribute "name" is required' in flat(bad.output), bad.output


def test_terraform_identity_created_by_apply_and_kept_on_update(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(required_providers() + 'resource "example_thing" "a" {\n  name = "one"\n}\n')
    ws.apply()
    (instance,) = json.loads(ws.state_file.read_text())["resources"][0]["instances"]
    assert instance["identity"] == {"name": "one"}
    ws.write(
        required_providers() + 'resource "example_thing" "a" {\n  name = "one"\n  size = 3\n}\n'
    )
    ws.apply()
    (instance,) = json.loads(ws.state_file.read_text())["resources"][0]["instances"]
    assert instance["identity"] == {"name": "one"}
    assert instance["attributes"]["size"] == 3


WRITE_ONLY = (
    required_providers()
    + """
variable "password" {
  type      = string
  ephemeral = true
}
resource "example_thing" "a" {
  name        = "wo"
  password_wo = var.password
}
"""
)


def test_terraform_write_only_attribute_never_reaches_plan_or_state(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(WRITE_ONLY)
    # The provider sees the write-only value (create checks its length) ...
    short = ws.apply("-var=password=short", check=False)
    assert not short.ok
    out = flat(short.output)
    assert (
        "Password too short" in out and "password_wo must have 8 characters or more, got 5" in out
    )
    assert "password_wo" in out, short.output
    # ... and the value is in neither the plan nor the state file.
    secret = "correct-horse-battery"
    ws.plan("-out=tfplan", f"-var=password={secret}")
    assert secret.encode() not in (ws.dir / "tfplan").read_bytes()
    plan = ws.run("show", "-json", "-no-color", "tfplan").json()
    assert secret not in json.dumps(plan)
    ws.apply(f"-var=password={secret}")
    raw = ws.state_file.read_text()
    assert secret not in raw
    attrs = json.loads(raw)["resources"][0]["instances"][0]["attributes"]
    assert attrs["password_wo"] is None and attrs["name"] == "wo"


def test_terraform_deprecated_attribute_warns(
    terraform_workspace: WorkspaceFactory, provider: Path | list[str]
) -> None:
    ws = terraform_workspace(provider)
    ws.write(
        required_providers() + 'resource "example_thing" "a" {\n  name  = "d"\n  label = "x"\n}\n'
    )
    out = flat(ws.validate().output)
    assert "Warning: Attribute Deprecated" in out, out
    assert "label is deprecated: use tags instead." in out, out
    assert "with example_thing.a, on main.tf line 8" in out and 'label = "x"' in out, out
    ws.write(required_providers() + 'resource "example_thing" "a" {\n  name = "d"\n}\n')
    assert "Deprecated" not in ws.validate().output


DEFERRED = (
    required_providers()
    + """
resource "example_thing" "first" {
  name = "first"
}
provider "example" {
  alias    = "late"
  endpoint = example_thing.first.id
}
resource "example_thing" "second" {
  provider = example.late
  name     = "second"
}
data "example_echo" "e" {
  provider = example.late
  input    = "hello"
}
"""
)


def test_terraform_deferred_plan_while_provider_config_is_unknown(
    provider: Path | list[str], tmp_path: Path
) -> None:
    cli = terraform_experiments_binary()
    ws = Workspace(cli, tmp_path / "tf", {"plugwire/example": provider})
    ws.write(DEFERRED)
    plan = ws.plan_json("-allow-deferral")
    changes = {rc["address"]: rc for rc in plan.get("resource_changes", [])}
    assert changes["example_thing.first"]["change"]["actions"] == ["create"]
    deferred = {d["resource_change"]["address"]: d["reason"] for d in plan["deferred_changes"]}
    assert deferred == {
        "example_thing.second": "provider_config_unknown",
        "data.example_echo.e": "provider_config_unknown",
    }, plan["deferred_changes"]
    # Applying creates the first thing; the next plan has nothing deferred left.
    ws.apply("-allow-deferral")
    assert set(ws.resources()) == {"example_thing.first"}
    ws.apply("-allow-deferral")
    assert set(ws.resources()) == {
        "example_thing.first",
        "example_thing.second",
        "data.example_echo.e",
    }
    assert ws.has_changes("-allow-deferral") is False


def test_terraform_providers_schema_json_matches_the_go_framework_provider(
    terraform_workspace: WorkspaceFactory, go_provider: Path
) -> None:
    config = required_providers() + 'resource "example_thing" "a" {\n  name = "x"\n}\n'
    schemas = []
    for provider in (PYTHON_PROVIDER, go_provider):
        ws = terraform_workspace(provider)
        ws.write(config)
        schemas.append(ws.providers_schema()["provider_schemas"][EXAMPLE_ADDRESS])
    python, go = schemas
    # Every section both providers have (provider, resources, data sources, ephemeral
    # resources, functions, resource identities), field by field.
    assert set(python) == set(go)
    assert "resource_identity_schemas" in python
    assert schema_diff(python, go) == []
