"""A plugwire state store as the real terraform CLI's state storage.

``state_store`` is an experiment in terraform v1.16: its block parses only in builds
with experiments allowed (``-X main.experimentsAllowed=yes``, what terraform's release
process sets for alpha/dev builds), so these tests use the second cached build
:func:`terraform_support.terraform_experiments_binary` of the same version. The example
``fsstate`` provider is installed from a filesystem mirror like a release; its
``fsstate_dir`` store keeps the states in a directory with a small chunk size, so every
read and write is many chunks. Builtin ``terraform_data`` resources fill the state.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from terraform_support import TERRAFORM_VERSION, Workspace, terraform_experiments_binary

from plugwire.grpc.terraform import LockInfo

pytestmark = [pytest.mark.interop, pytest.mark.timeout(3600)]

FSSTATE = [sys.executable, "-m", "plugwire.grpc.terraform.examples.fsstate"]
SOURCE = "plugwire/fsstate"
CHUNK = 100


@pytest.fixture(scope="module")
def experiments_cli() -> Path:
    return terraform_experiments_binary()


def _config(store: Path, body: str) -> str:
    return f"""
terraform {{
  required_providers {{
    fsstate = {{ source = "{SOURCE}" }}
  }}
  state_store "fsstate_dir" {{
    provider "fsstate" {{}}
    path       = {json.dumps(str(store))}
    chunk_size = {CHUNK}
  }}
}}
{body}
"""


def _workspace(cli: Path, tmp_path: Path) -> tuple[Workspace, Path]:
    ws = Workspace(cli, tmp_path / "tf", {SOURCE: FSSTATE}, install="mirror")
    return ws, tmp_path / "states"


def _state(store: Path, state_id: str = "default") -> dict[str, object]:
    data: dict[str, object] = json.loads((store / f"{state_id}.tfstate").read_bytes())
    return data


def _inputs(state: dict[str, object]) -> dict[str, object]:
    resources = state["resources"]
    assert isinstance(resources, list)
    return {
        f"{r['type']}.{r['name']}": r["instances"][0]["attributes"]["input"]["value"]
        for r in resources
    }


def test_experiments_build_is_the_same_version(experiments_cli: Path, tmp_path: Path) -> None:
    ws, _ = _workspace(experiments_cli, tmp_path)
    out = ws.run("version", "-json").json()
    assert out["terraform_version"] == TERRAFORM_VERSION


def test_state_store_round_trip(experiments_cli: Path, tmp_path: Path) -> None:
    ws, store = _workspace(experiments_cli, tmp_path)
    ws.write(
        _config(
            store,
            'resource "terraform_data" "a" {\n  input = "hello"\n}\n'
            'output "a" {\n  value = terraform_data.a.output\n}\n',
        )
    )
    init = ws.init("-enable-pluggable-state-storage-experiment")
    assert "fsstate_dir" in init.output or "state store" in init.output.lower()
    ws.apply()
    # The state is in the store (written in chunks of CHUNK bytes), not in the workdir.
    assert not ws.state_file.exists()
    raw = (store / "default.tfstate").read_bytes()
    assert len(raw) > 5 * CHUNK
    state = _state(store)
    assert _inputs(state) == {"terraform_data.a": "hello"}
    assert state["outputs"] == {"a": {"value": "hello", "type": "string"}}
    assert not (store / "default.tflock").exists()  # unlocked after apply

    # Read back through ReadStateBytes: state list, outputs, a no-change plan.
    listed = ws.run("state", "list", "-no-color", env={"TF_LOG": "trace"})
    assert listed.stdout.split() == ["terraform_data.a"]
    # Terraform took the store's chunk size and read the state in CHUNK-byte chunks.
    assert f"negotiated a chunk size of {CHUNK} when configuring state store" in listed.stderr
    assert "Unexpected size of chunk" not in listed.stderr
    assert ws.outputs() == {"a": "hello"}
    assert not ws.has_changes()

    # An update: the new serial is written, the old one replaced.
    ws.write(
        _config(
            store,
            'resource "terraform_data" "a" {\n  input = "world"\n}\n'
            'resource "terraform_data" "b" {\n  input = "x"\n}\n',
        )
    )
    ws.apply()
    updated = _state(store)
    assert _inputs(updated) == {"terraform_data.a": "world", "terraform_data.b": "x"}
    assert isinstance(updated["serial"], int) and isinstance(state["serial"], int)
    assert updated["serial"] > state["serial"]
    assert updated["lineage"] == state["lineage"]

    # Workspaces are states: GetStates, a new one written, deleted with DeleteState.
    ws.run("workspace", "new", "-no-color", "dev")
    ws.apply()
    assert _inputs(_state(store, "dev")) == {"terraform_data.a": "world", "terraform_data.b": "x"}
    listed = ws.run("workspace", "list", "-no-color").stdout.replace("*", " ").split()
    assert sorted(listed) == ["default", "dev"]
    ws.run("workspace", "select", "-no-color", "default")
    ws.run("workspace", "delete", "-no-color", "-force", "dev")
    assert not (store / "dev.tfstate").exists()
    assert sorted(ws.run("workspace", "list", "-no-color").stdout.replace("*", " ").split()) == [
        "default"
    ]

    ws.destroy()
    assert _state(store)["resources"] == []


def test_state_store_locking(experiments_cli: Path, tmp_path: Path) -> None:
    ws, store = _workspace(experiments_cli, tmp_path)
    ws.write(
        _config(
            store,
            'variable "n" {\n  default = 1\n}\n'
            'resource "terraform_data" "slow" {\n  input = var.n\n'
            '  provisioner "local-exec" {\n    command = "sleep 6"\n  }\n}\n',
        )
    )
    ws.init("-enable-pluggable-state-storage-experiment")
    lock = store / "default.tflock"

    # A lock held by another client: terraform fails naming that lock; force-unlock
    # with its ID (UnlockState) releases it.
    other = LockInfo(id="11111111-2222-3333-4444-555555555555", operation="OperationTypeApply",
                     who="someone@elsewhere", created="2026-01-01T00:00:00Z")  # fmt: skip
    store.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(other.to_json())
    held = ws.fails("plan", "-input=false", "-no-color", "-lock-timeout=0s")
    assert "Workspace Already Locked" in held.output
    assert other.id in held.output and "someone@elsewhere" in held.output
    # A wrong ID does not unlock it, and says which lock is held.
    wrong = ws.fails("force-unlock", "-force", "not-the-lock")
    assert other.id in wrong.output
    assert lock.exists()
    ws.run("force-unlock", "-force", other.id)
    assert not lock.exists()

    # Two terraform runs: the second fails on the first one's lock while it applies.
    first = ws.start("apply", "-input=false", "-no-color", "-auto-approve")
    try:
        deadline = time.monotonic() + 120
        while not lock.exists():
            assert first.poll() is None, f"apply ended before locking: {first.communicate()}"
            assert time.monotonic() < deadline, "apply never took the lock"
            time.sleep(0.1)
        holder = LockInfo.from_json(lock.read_bytes())
        assert holder.operation == "OperationTypeApply"
        second = ws.fails("plan", "-input=false", "-no-color", "-lock-timeout=0s")
        assert "Workspace Already Locked" in second.output and holder.id in second.output
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, out + err
    assert not lock.exists()
    assert "terraform_data.slow" in _inputs(_state(store))
