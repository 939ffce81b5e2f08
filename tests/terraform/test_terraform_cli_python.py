"""The real terraform CLI against plugwire's example provider
(plugwire.grpc.terraform.examples.thing): import, sensitive values, validation
diagnostics, state upgrade across schema versions, Ctrl-C mid-apply and a value that is
unknown until apply consumed by an output."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from typing import Any

import pytest
from terraform_support import (
    EXAMPLE_ADDRESS,
    TERRAFORM_VERSION,
    WorkspaceFactory,
    required_providers,
)

pytestmark = pytest.mark.interop

#: plugwire's example provider, as the command the terraform CLI launches.
PYTHON_PROVIDER = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]

#: ``created`` as the example's create() writes it.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _thing(name: str = "alpha", extra: str = "") -> str:
    return required_providers() + f'resource "example_thing" "a" {{\n  name = "{name}"\n{extra}}}\n'


def _change(plan: dict[str, Any], address: str) -> dict[str, Any]:
    for rc in plan.get("resource_changes", []):
        if rc["address"] == address:
            change: dict[str, Any] = rc["change"]
            return change
    raise AssertionError(f"no change for {address} in the plan: {plan.get('resource_changes')}")


def _flat(text: str) -> str:
    """Output with the box-drawing margin and line breaks folded to single spaces."""
    return " ".join(text.replace("│", " ").replace("╷", " ").replace("╵", " ").split())


def test_terraform_import_good_and_bad_ids(terraform_workspace: WorkspaceFactory) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("gamma"))

    ws.run("import", "-input=false", "-no-color", "example_thing.a", "thing-gamma")
    thing = ws.resources()["example_thing.a"]
    assert thing["id"] == "thing-gamma"
    assert thing["name"] == "gamma" and thing["size"] == 1
    assert thing["created"] == "imported"  # read() filled in the imported thing
    assert ws.has_changes() is False  # state matches the config

    ws.write('resource "example_thing" "b" {\n  name = "delta"\n}\n', "b.tf")
    bad = ws.fails("import", "-input=false", "-no-color", "example_thing.b", "nope")
    flat = _flat(bad.output)
    assert "Error: Invalid import id" in flat, bad.output
    assert 'expected "thing-<name>", got "nope"' in flat, bad.output
    # Nothing was imported, the state is untouched and the provider still works.
    assert set(ws.resources()) == {"example_thing.a"}
    ws.run("import", "-input=false", "-no-color", "example_thing.b", "thing-delta")
    assert ws.resources()["example_thing.b"]["name"] == "delta"
    assert ws.has_changes() is False


def test_terraform_sensitive_secret_in_plan_json_and_redacted_in_text(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing(extra='  secret = "hunter2"\n'))

    change = _change(ws.plan_json(), "example_thing.a")
    assert change["actions"] == ["create"]
    assert change["after_sensitive"]["secret"] is True
    assert change["after_sensitive"].get("name") in (None, False)

    text = ws.plan().stdout
    assert re.search(r"\+ secret\s+= \(sensitive value\)", text), text
    assert "hunter2" not in text
    assert re.search(r'\+ name\s+= "alpha"', text), text

    ws.apply()
    assert ws.resources()["example_thing.a"]["secret"] == "hunter2"  # stored, only hidden
    show = ws.run("show", "-no-color").stdout
    assert "hunter2" not in show and "(sensitive value)" in show


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_terraform_validation_error_names_the_attribute(
    terraform_workspace: WorkspaceFactory, name: str
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing(name))
    result = ws.fails("plan", "-input=false", "-no-color")
    flat = _flat(result.output)
    assert "Error:" in flat, result.output
    # Terraform points at the attribute the provider's diagnostic names.
    assert 'in resource "example_thing" "a"' in flat, result.output
    assert re.search(r"\d+:\s+name\s+=", flat), result.output
    assert "length" in flat.lower() and "64" in flat, result.output
    assert not ws.state_file.exists()

    ws.write(_thing("ok"))  # the same provider accepts a valid name
    ws.apply()
    assert ws.resources()["example_thing.a"]["id"] == "thing-ok"


def _v0_state(size: Any) -> dict[str, Any]:
    """A terraform state (format 4) holding ``example_thing.a`` at schema version 0,
    where ``size`` was a string."""
    return {
        "version": 4,
        "terraform_version": TERRAFORM_VERSION,
        "serial": 1,
        "lineage": "8a7c3c1e-0000-4000-8000-000000000001",
        "outputs": {},
        "resources": [
            {
                "mode": "managed",
                "type": "example_thing",
                "name": "a",
                "provider": f'provider["{EXAMPLE_ADDRESS}"]',
                "instances": [
                    {
                        "schema_version": 0,
                        "attributes": {
                            "id": "thing-old",
                            "name": "old",
                            "size": size,
                            "tags": {"team": "core"},
                            "secret": None,
                            "created": "2020-01-02T03:04:05Z",
                        },
                        "sensitive_attributes": [],
                    }
                ],
            }
        ],
        "check_results": None,
    }


def test_terraform_upgrades_schema_version_0_state(terraform_workspace: WorkspaceFactory) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("old", '  size = 5\n  tags = { team = "core" }\n'))
    ws.state_file.write_text(json.dumps(_v0_state("5")))

    # The plan reads the v0 state through UpgradeResourceState: size "5" is the number 5.
    assert ws.has_changes() is False
    ws.apply("-refresh-only")
    state = json.loads(ws.state_file.read_text())
    instance = state["resources"][0]["instances"][0]
    assert instance["schema_version"] == 1
    assert instance["attributes"]["size"] == 5
    thing = ws.resources()["example_thing.a"]
    assert thing["size"] == 5 and thing["id"] == "thing-old"
    assert thing["created"] == "2020-01-02T03:04:05Z"  # kept across the upgrade

    # The upgraded state behaves like any other: changing size is an in-place update.
    ws.write(_thing("old", '  size = 7\n  tags = { team = "core" }\n'))
    assert _change(ws.plan_json(), "example_thing.a")["actions"] == ["update"]


def test_terraform_state_upgrade_failure_is_a_diagnostic(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("old", '  tags = { team = "core" }\n'))
    ws.state_file.write_text(json.dumps(_v0_state("many")))
    result = ws.fails("plan", "-input=false", "-no-color")
    flat = _flat(result.output)
    assert "Cannot upgrade size" in flat, result.output
    assert "size 'many' is not a number" in flat, result.output
    # The state file is left as it was (still version 0).
    instance = json.loads(ws.state_file.read_text())["resources"][0]["instances"][0]
    assert instance["schema_version"] == 0 and instance["attributes"]["size"] == "many"


def test_terraform_ctrl_c_cancels_a_slow_create(terraform_workspace: WorkspaceFactory) -> None:
    delay = 60.0
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("slow"))
    proc = ws.start(
        "apply", "-input=false", "-no-color", "-auto-approve",
        env={"EXAMPLE_APPLY_DELAY": str(delay)},
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    started = time.monotonic()
    for line in proc.stdout:  # wait until the provider is inside create()
        seen.append(line)
        if "example_thing.a: Creating..." in line:
            break
    else:
        proc.wait(timeout=30)
        raise AssertionError(f"apply ended before creating: {''.join(seen)}")
    time.sleep(1.0)  # let the ApplyResourceChange call reach the provider
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=45)
    elapsed = time.monotonic() - started
    output = _flat("".join(seen) + out + err)

    assert proc.returncode != 0, output
    assert elapsed < delay, f"apply took {elapsed:.1f}s: the create was not cancelled"
    assert "Interrupt received" in output, output
    assert "cancelled: Terraform stopped the provider (StopProvider)" in output, output
    assert "example_thing.a" not in ws.resources()  # nothing was created

    ws.apply()  # without the delay the same config applies
    assert ws.resources()["example_thing.a"]["id"] == "thing-slow"


def test_terraform_unknown_created_consumed_by_an_output(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(
        _thing("beta")
        + 'output "created" {\n  value = example_thing.a.created\n}\n'
        + 'output "label" {\n  value = "${example_thing.a.id}@${example_thing.a.created}"\n}\n'
    )
    plan = ws.plan_json()
    assert _change(plan, "example_thing.a")["after_unknown"]["created"] is True
    outputs = plan["output_changes"]
    assert outputs["created"]["after_unknown"] is True
    assert outputs["label"]["after_unknown"] is True
    text = ws.plan().stdout
    assert re.search(r"\+ created\s+= \(known after apply\)", text), text

    ws.apply()
    created = ws.resources()["example_thing.a"]["created"]
    assert TIMESTAMP.match(created), created
    assert ws.outputs() == {"created": created, "label": f"thing-beta@{created}"}
    assert ws.has_changes() is False
