"""The provider under the real terraform CLI: schema, plan, apply, update, replace,
destroy, the data source, the function and a validation error (examples/main.tf)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import EXECUTABLE, PROVIDER_NAME, SOURCE, Terraform

RESOURCE = f"{PROVIDER_NAME}_greeting.this"
DEFAULT_GREETING = "{{ cookiecutter.default_greeting }}"  # examples/main.tf's provider block
NEW_GREETING = "Good day" if DEFAULT_GREETING != "Good day" else "Hi there"


def test_the_executable_refuses_to_run_outside_terraform(provider_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    proc = subprocess.run(
        [str(provider_dir / EXECUTABLE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "This binary is a plugin" in proc.stdout + proc.stderr


def test_terraform_reads_the_schema(terraform: Terraform) -> None:
    schemas = terraform.json("providers", "schema", "-json")["provider_schemas"]
    schema = schemas[f"registry.terraform.io/{SOURCE}"]
    assert set(schema["provider"]["block"]["attributes"]) == {"greeting"}
    greeting = schema["resource_schemas"][f"{PROVIDER_NAME}_greeting"]["block"]["attributes"]
    assert set(greeting) == {"id", "name", "greeting", "text"}
    assert greeting["name"].get("required") and greeting["text"].get("computed")
    message = schema["data_source_schemas"][f"{PROVIDER_NAME}_message"]["block"]["attributes"]
    assert set(message) == {"name", "greeting", "text"}
    shout = schema["functions"]["shout"]
    assert shout["return_type"] == "string"
    assert [p["name"] for p in shout["parameters"]] == ["text"]


def test_apply_update_replace_and_destroy(terraform: Terraform) -> None:
    # Create: text is known at plan time, the id only after apply.
    [(address, change)] = terraform.plan().items()
    assert (address, change["actions"]) == (RESOURCE, ["create"])
    assert change["after"]["text"] == f"{DEFAULT_GREETING}, world!"
    assert change["after_unknown"]["id"] is True
    outputs = terraform.apply()
    first_id = outputs["id"]
    assert len(first_id) == 32
    assert outputs["text"] == f"{DEFAULT_GREETING}, world!"
    assert outputs["shout"] == f"{DEFAULT_GREETING.upper()}, WORLD!!"  # the function
    assert outputs["message"] == "Welcome, reader!"  # the data source

    # Nothing changed: the next plan is empty.
    assert terraform.run("plan", "-detailed-exitcode").returncode == 0

    # A new greeting updates in place and keeps the id.
    greeting = f"-var=greeting={NEW_GREETING}"
    assert terraform.plan(greeting)[RESOURCE]["actions"] == ["update"]
    outputs = terraform.apply()
    assert (outputs["id"], outputs["text"]) == (first_id, f"{NEW_GREETING}, world!")

    # A new name replaces the greeting: a new id.
    change = terraform.plan(greeting, "-var=name=moon")[RESOURCE]
    assert change["actions"] == ["delete", "create"]
    assert change["after_unknown"]["id"] is True
    outputs = terraform.apply()
    assert outputs["id"] != first_id
    assert outputs["text"] == f"{NEW_GREETING}, moon!"

    terraform.run("destroy", "-auto-approve", greeting, "-var=name=moon")
    assert terraform.json("show", "-json").get("values") is None  # nothing left


def test_an_invalid_name_is_an_error_naming_the_attribute(terraform: Terraform) -> None:
    proc = terraform.run("plan", "-var=name=", ok=False)
    assert proc.returncode == 1
    assert "Invalid attribute value length" in proc.stderr
    assert "name: length must be 1..64, got 0" in proc.stderr
