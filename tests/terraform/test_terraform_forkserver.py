"""The real terraform CLI launching plugwire's example provider through the fork server
(plugwire.core.forkserver via plugwire.grpc.terraform.launch): one launch of a command
imports, the later ones are forked; every launch still behaves as its own process; a
SIGKILLed terraform leaves no provider process behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from terraform_support import Workspace, WorkspaceFactory, required_providers

pytestmark = pytest.mark.interop

PYTHON_PROVIDER = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]
FORKED = "launch served by a fork server child"
STARTED = "provider: starting plugin:"


def _thing(name: str) -> str:
    return required_providers() + f'resource "example_thing" "a" {{\n  name = "{name}"\n}}\n'


def _debug(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    proc = ws.start(*args, env={"TF_LOG": "debug", **(env or {})})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err[-3000:]
    return out, err


def test_a_plan_imports_once_and_forks_the_later_launches(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("forked"))
    out, err = _debug(ws, "plan", "-input=false", "-no-color")
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out
    launches = err.count(STARTED)
    assert launches >= 3, err[-3000:]  # schema, validate, plan
    assert err.count(FORKED) == launches - 1  # all but the first

    ws.apply()  # create, then replace: every launch forked but the first
    ws.write(_thing("renamed"))
    out, err = _debug(ws, "apply", "-input=false", "-no-color", "-auto-approve")
    assert "Resources: 1 added, 0 changed, 1 destroyed." in out
    assert err.count(FORKED) == err.count(STARTED) - 1 >= 3
    assert ws.resources()["example_thing.a"]["name"] == "renamed"


def test_off_with_plugwire_forkserver_0(terraform_workspace: WorkspaceFactory) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("unforked"))
    out, err = _debug(ws, "plan", "-input=false", "-no-color", env={"PLUGWIRE_FORKSERVER": "0"})
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out
    assert err.count(STARTED) >= 3 and FORKED not in err


def _processes_in(directory: Path) -> dict[int, str]:
    """Live processes whose working directory is ``directory``: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != directory:
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(") ", 1)[-1].startswith("Z"):
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[-1].startswith("Z")


def test_a_sigkilled_terraform_leaves_no_provider_process(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("orphan"))
    proc = ws.start(
        "apply", "-input=false", "-no-color", "-auto-approve",
        env={"EXAMPLE_APPLY_DELAY": "60"},
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # the apply launch is inside create()
        if "example_thing.a: Creating..." in line:
            break
    else:
        raise AssertionError(f"apply ended before creating: {proc.communicate(timeout=30)}")
    directory = ws.dir.resolve()
    providers = {
        pid: cmd
        for pid, cmd in _processes_in(directory).items()
        if pid != proc.pid and "examples.thing" in cmd
    }
    # the apply's launch, the child serving it and the fork server
    assert len(providers) >= 3, providers
    proc.kill()
    proc.wait(timeout=30)
    # Gone or a zombie (never signalled by us). Not "out of the directory": a process
    # that is exiting lets go of its working directory before it is a zombie.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(_alive, providers)):
        time.sleep(0.1)
    left = {p: c for p, c in providers.items() if _alive(p)}
    assert left == {}, f"left behind after terraform was SIGKILLed: {left}"


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_ctrl_c_reaches_a_forked_launch(terraform_workspace: WorkspaceFactory, sig: int) -> None:
    """Ctrl-C mid-apply with the apply's launch forked: Terraform's StopProvider cancels
    the create as without the fork server (go-plugin plugins ignore SIGINT itself)."""
    ws = terraform_workspace(PYTHON_PROVIDER)
    ws.write(_thing("slow"))
    proc = ws.start(
        "apply", "-input=false", "-no-color", "-auto-approve",
        env={"EXAMPLE_APPLY_DELAY": "60", "TF_LOG": "debug"},
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if "example_thing.a: Creating..." in line:
            break
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=45)
    assert time.monotonic() - started < 30
    assert proc.returncode != 0
    assert FORKED in err
    assert "cancelled: Terraform stopped the provider (StopProvider)" in " ".join(
        (out + err).replace("│", " ").split()
    )
    assert "example_thing.a" not in ws.resources()
