"""The real terraform CLI (v1.16.4) drives plugwire's actions and list resources, on
protocol 5 and protocol 6 (the ``ops`` example provider offers only one of them):

* an ``action`` block run by a resource's ``lifecycle { action_trigger }`` after
  create, and by ``terraform apply -invoke=action.<type>.<name>``, its progress
  messages printed by the CLI as they stream in, its failure a diagnostic;
* Ctrl-C during a long ``-invoke``: Terraform sends StopProvider, the action is
  cancelled mid-way and the run ends with the provider's "Operation cancelled"
  diagnostic;
* ``terraform query`` of a ``.tfquery.hcl`` with ``list`` blocks: identities, display
  names, full objects with ``include_resource``, ``limit`` (the provider stops
  producing), and validation errors naming the attribute.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from core_support import flat
from terraform_support import Workspace, log_lines, ops_workspace

pytestmark = pytest.mark.interop

MAIN = """
terraform {
  required_providers {
    ops = { source = "plugwire/ops" }
  }
}

resource "ops_server" "web" {
  name = "web"
  lifecycle {
    action_trigger {
      events  = [after_create]
      actions = [action.ops_reboot.after]
    }
  }
}

action "ops_reboot" "after" {
  config {
    server = "web"
    steps  = 2
  }
}

action "ops_reboot" "now" {
  config {
    server = "db"
    steps  = 3
  }
}

action "ops_reboot" "broken" {
  config {
    server = "cache"
    steps  = 1
    fail   = true
  }
}

action "ops_reboot" "slow" {
  config {
    server = "big"
    steps  = 600
    delay  = 0.1
  }
}
"""

QUERY = """
list "ops_server" "web" {
  provider         = ops
  include_resource = true
  limit            = 3
  config {
    prefix = "web"
    count  = 50
  }
}

list "ops_server" "db" {
  provider = ops
  config {
    prefix = "db"
    count  = 2
  }
}
"""


@pytest.fixture
def ws(terraform_cli: Path, tmp_path: Path, ops_protocol: int, ops_log: Path) -> Workspace:
    return ops_workspace(terraform_cli, tmp_path / "tf", MAIN, protocol=ops_protocol, log=ops_log)


def test_action_trigger_after_create_streams_progress(ws: Workspace, ops_log: Path) -> None:
    result = ws.apply()
    out = result.stdout
    assert "Actions: 1 to invoke." in out, out
    lines = [line.strip() for line in out.splitlines()]
    by = "action.ops_reboot.after (triggered by ops_server.web)"
    expected = [
        f"Action started: {by}",
        f"Action {by}: rebooting web: step 1/2",
        f"Action {by}: rebooting web: step 2/2",
        f"Action complete: {by}",
    ]
    assert [line for line in lines if line.startswith("Action ")] == expected, out
    assert "Actions: 1 invoked." in out, out
    assert log_lines(ops_log) == ["invoke web 1", "invoke web 2", "invoked web"]
    assert ws.resources()["ops_server.web"]["id"] == "server-web"
    ws.apply()  # no change: the after_create trigger does not run again
    assert log_lines(ops_log)[-1] == "invoked web" and len(log_lines(ops_log)) == 3


def test_invoke_action_from_the_cli(ws: Workspace, ops_log: Path) -> None:
    out = ws.apply("-invoke=action.ops_reboot.now").stdout
    by = "action.ops_reboot.now (triggered by CLI)"
    for step in (1, 2, 3):
        assert f"Action {by}: rebooting db: step {step}/3" in out, out
    assert f"Action complete: {by}" in out
    assert log_lines(ops_log)[-1] == "invoked db"
    assert "ops_server.web" not in ws.resources()  # -invoke runs only the action

    failed = ws.run("apply", "-auto-approve", "-no-color", "-invoke=action.ops_reboot.broken",
                    check=False)  # fmt: skip
    assert not failed.ok
    text = flat(failed.output)
    assert "Action failed: action.ops_reboot.broken (triggered by CLI)" in text, text
    assert "Error: Reboot failed" in text and "cache did not come back" in text, text


def test_invalid_action_config_is_a_diagnostic(ws: Workspace) -> None:
    ws.write(
        'action "ops_reboot" "bad" {\n  config {\n    server = ""\n    steps = 0\n  }\n}\n',
        "bad.tf",
    )
    result = ws.run("validate", "-no-color", check=False)
    assert not result.ok
    text = flat(result.output)
    assert "server must not be empty" in text, text
    assert "must be between 1 and 1000, got 0" in text, text


def test_ctrl_c_stops_a_long_invoke(ws: Workspace, ops_log: Path) -> None:
    proc = ws.start("apply", "-auto-approve", "-no-color", "-invoke=action.ops_reboot.slow")
    assert proc.stdout is not None and proc.stderr is not None
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        for line in proc.stdout:  # progress arrives while the action runs
            seen.append(line)
            if "rebooting big: step 3/600" in line:
                break
        else:
            raise AssertionError(f"no progress before the end: {''.join(seen)}")
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
    stopped_after = time.monotonic() - interrupted
    text = flat("".join(seen) + out + err)
    assert proc.returncode != 0, text
    assert "Interrupt received" in text, text
    assert "Action failed: action.ops_reboot.slow (triggered by CLI)" in text, text
    assert "Error: Operation cancelled" in text, text
    assert "ops_reboot invoke was cancelled: Terraform stopped the provider (StopProvider)" in (
        text
    )
    steps = [line for line in log_lines(ops_log) if line.startswith("invoke big")]
    assert 3 <= len(steps) < 600 and "invoked big" not in log_lines(ops_log)
    assert stopped_after < 30, stopped_after


def _query_json(ws: Workspace, *extra: str) -> list[dict[str, Any]]:
    result = ws.run("query", "-json", *extra)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_terraform_query_lists_with_and_without_objects(ws: Workspace, ops_log: Path) -> None:
    ws.write(QUERY, "servers.tfquery.hcl")
    human = ws.run("query", "-no-color").stdout
    rows = [line.split() for line in human.splitlines() if line.startswith("list.")]
    expected = [
        *(["list.ops_server.web", f"name=web-{i}", "server", f"web-{i}"] for i in range(3)),
        *(["list.ops_server.db", f"name=db-{i}", "server", f"db-{i}"] for i in range(2)),
    ]
    assert sorted(rows) == sorted(expected), human  # the two lists run concurrently
    # limit = 3 of 50: the provider's generator was closed after 3 results.
    assert sorted(log_lines(ops_log)) == ["listed db 2", "listed web 3"]

    found: dict[str, list[dict[str, Any]]] = {}
    complete: dict[str, int] = {}
    for message in _query_json(ws):
        if message["type"] == "list_resource_found":
            item = message["list_resource_found"]
            found.setdefault(item["address"], []).append(item)
        elif message["type"] == "list_complete":
            complete[message["list_complete"]["address"]] = message["list_complete"]["total"]
    assert complete == {"list.ops_server.web": 3, "list.ops_server.db": 2}
    web, db = found["list.ops_server.web"], found["list.ops_server.db"]
    assert [w["identity"] for w in web] == [{"name": f"web-{i}"} for i in range(3)]
    assert [w["resource_object"] for w in web] == [
        {"id": f"server-web-{i}", "name": f"web-{i}", "size": i} for i in range(3)
    ]
    assert [d["display_name"] for d in db] == ["server db-0", "server db-1"]
    assert all("resource_object" not in d for d in db)  # include_resource not set
    assert all(item["identity_version"] == 0 for item in web + db)


def test_terraform_query_errors_name_the_attribute(ws: Workspace) -> None:
    ws.write(
        'list "ops_server" "bad" {\n  provider = ops\n  config {\n'
        '    prefix = "x"\n    count = 20000\n  }\n}\n',
        "bad.tfquery.hcl",
    )
    result = ws.run("query", "-no-color", check=False)
    assert not result.ok
    text = flat(result.output)
    assert "must be between 0 and 10000, got 20000" in text, text
    assert "count" in text

    ws.write(
        'list "ops_server" "bad" {\n  provider = ops\n  config {\n'
        '    prefix = "-x"\n    count = 2\n  }\n}\n',
        "bad.tfquery.hcl",
    )
    result = ws.run("query", "-no-color", check=False)
    assert not result.ok
    text = flat(result.output)
    assert "Error: Invalid prefix" in text and "a prefix cannot start with '-'" in text, text
