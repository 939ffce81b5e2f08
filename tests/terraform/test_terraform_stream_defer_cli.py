"""The real terraform CLI (v1.16.4, the experiments build: only it accepts
``-allow-deferral``) drives a deferred action plan, on protocol 5 and 6.

A resource's ``action_trigger`` calls an action whose provider (``ops.late``) is
configured from a value known only after apply; the ``ops`` example's action plan
then defers (``ctx.defer()``), so Terraform defers the triggering resource and its
action to the next run: the first apply creates only the other resource, the second
creates the deferred one and runs the action. Without ``-allow-deferral`` the same
plan fails with the provider's "Deferral not allowed" diagnostic naming the action.

Terraform v1.16.4 cannot read back a saved plan holding a deferred action trigger
(``terraform show -json tfplan``: "invalid action trigger event INVALID_EVENT":
``reportDeferredActionTriggers`` leaves the event unset), so the test reads the
plan's text and the applies instead of the plan JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from core_support import flat, terraform_experiments_binary
from terraform_support import log_lines, ops_workspace

pytestmark = pytest.mark.interop

MAIN = """
terraform {
  required_providers {
    ops = { source = "plugwire/ops" }
  }
}

resource "ops_server" "first" {
  name = "first"
}

provider "ops" {
  alias    = "late"
  endpoint = ops_server.first.id
}

resource "ops_server" "web" {
  name = "web"
  lifecycle {
    action_trigger {
      events  = [after_create]
      actions = [action.ops_reboot.late]
    }
  }
}

action "ops_reboot" "late" {
  provider = ops.late
  config {
    server = "web"
    steps  = 2
  }
}
"""


def test_terraform_defers_an_action_while_its_provider_config_is_unknown(
    tmp_path: Path, ops_protocol: int, ops_log: Path
) -> None:
    cli = terraform_experiments_binary()
    ws = ops_workspace(cli, tmp_path / "tf", MAIN, protocol=ops_protocol, log=ops_log)

    # Without -allow-deferral: the provider's diagnostic, on the action block.
    refused = ws.run("plan", "-no-color", check=False)
    assert not refused.ok
    text = flat(refused.output)
    assert "Error: Deferral not allowed" in text, text
    assert "with ops_server.web, called from action.ops_reboot.late" in text, text
    assert "ops_reboot deferred (PROVIDER_CONFIG_UNKNOWN)" in text, text

    # With it: ops_server.web (and its action) wait for the next run.
    plan = flat(ws.plan("-allow-deferral").output)
    assert "ops_server.first will be created" in plan, plan
    assert "ops_server.web" not in plan and "Actions:" not in plan, plan
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan, plan
    ws.apply("-allow-deferral")
    assert set(ws.resources()) == {"ops_server.first"}
    assert log_lines(ops_log) == []  # nothing invoked

    second = ws.apply("-allow-deferral").stdout
    by = "action.ops_reboot.late (triggered by ops_server.web)"
    assert "Actions: 1 to invoke." in second, second
    assert f"Action {by}: rebooting web: step 2/2" in second, second
    assert f"Action complete: {by}" in second, second
    assert set(ws.resources()) == {"ops_server.first", "ops_server.web"}
    assert log_lines(ops_log) == ["invoke web 1", "invoke web 2", "invoked web"]
    assert ws.has_changes("-allow-deferral") is False
