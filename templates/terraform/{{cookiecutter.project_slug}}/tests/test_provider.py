"""The provider under the real terraform CLI: schema, plan, apply, update, replace,
destroy, the data source, the function, a validation error, import by identity with
generated configuration, a write-only attribute that never reaches the plan or state,
and the action (examples/main.tf)."""

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
    assert set(greeting) == {"id", "name", "greeting", "text", "signature_wo"}
    assert greeting["name"].get("required") and greeting["text"].get("computed")
    assert greeting["signature_wo"].get("write_only") and greeting["signature_wo"]["sensitive"]
    identity = schema["resource_identity_schemas"][f"{PROVIDER_NAME}_greeting"]
    assert identity["attributes"]["name"]["required_for_import"] is True
    announce = schema["action_schemas"][f"{PROVIDER_NAME}_announce"]["block"]["attributes"]
    assert set(announce) == {"name", "times"}
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


IMPORT = """
import {
  to       = {{ cookiecutter.provider_name }}_greeting.imported
  identity = { name = "mars" }
}
"""


def test_import_by_identity_with_generated_config(terraform: Terraform) -> None:
    (terraform.dir / "import.tf").write_text(IMPORT)
    changes = terraform.plan("-generate-config-out=generated.tf")
    imported = f"{PROVIDER_NAME}_greeting.imported"
    assert changes[imported]["actions"] == ["no-op"]  # imported as it is, nothing to change
    assert changes[imported]["importing"]["identity"] == {"name": "mars"}
    generated = (terraform.dir / "generated.tf").read_text()
    assert f'resource "{PROVIDER_NAME}_greeting" "imported"' in generated, generated
    assert 'name         = "mars"' in generated, generated
    assert f'greeting     = "{DEFAULT_GREETING}"' in generated, generated
    assert "text" not in generated  # computed only: not configuration
    terraform.apply()
    [instance] = [
        r["instances"][0] for r in terraform.state()["resources"] if r["name"] == "imported"
    ]
    assert instance["identity"] == {"name": "mars"}
    assert instance["attributes"]["text"] == f"{DEFAULT_GREETING}, mars!"
    assert terraform.run("plan", "-detailed-exitcode").returncode == 0  # config matches

    # Every greeting has its identity in the state, those created by apply too.
    identities = {r["name"]: r["instances"][0]["identity"] for r in terraform.state()["resources"]
                  if r["mode"] == "managed"}  # fmt: skip
    assert identities == {"imported": {"name": "mars"}, "this": {"name": "world"}}


def test_write_only_signature_never_reaches_plan_or_state(terraform: Terraform) -> None:
    # The provider sees the value: its validator rejects a short one, naming it.
    short = terraform.run("plan", "-var=signature=short", ok=False)
    assert short.returncode == 1
    assert "signature_wo: length must be 8..128, got 5" in short.stderr, short.stderr
    secret = "correct-horse-battery-staple"
    change = terraform.plan(f"-var=signature={secret}")[RESOURCE]
    assert change["after"]["signature_wo"] is None
    assert secret.encode() not in (terraform.dir / "tfplan").read_bytes()
    terraform.apply(f"-var=signature={secret}")  # ephemeral: given again, not in the plan
    raw = (terraform.dir / "terraform.tfstate").read_text()
    assert secret not in raw
    [instance] = [r["instances"][0] for r in terraform.state()["resources"] if r["name"] == "this"]
    assert instance["attributes"]["signature_wo"] is None


def test_the_action_reports_progress(terraform: Terraform) -> None:
    action = f"action.{PROVIDER_NAME}_announce.hello"
    proc = terraform.run("apply", "-auto-approve", "-no-color", f"-invoke={action}")
    by = f"{action} (triggered by CLI)"
    for i in (1, 2):
        assert f"Action {by}: {DEFAULT_GREETING}, world! ({i}/2)" in proc.stdout, proc.stdout
    assert f"Action complete: {by}" in proc.stdout
    assert terraform.json("show", "-json").get("values") is None  # -invoke runs only the action
