"""Fixtures: the terraform CLI, and a working directory that runs this provider.

The tests run the real ``terraform`` CLI: ``$TERRAFORM`` if set, else ``terraform`` on
PATH. Without one they are skipped (failed under ``CI=true``) with what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "main.tf"
PROVIDER_NAME = "{{ cookiecutter.provider_name }}"
SOURCE = "{{ cookiecutter.namespace }}/{{ cookiecutter.provider_name }}"
EXECUTABLE = f"terraform-provider-{PROVIDER_NAME}"
#: Actions need terraform 1.14 (resource identity 1.12, write-only attributes 1.11,
#: provider-defined functions 1.8).
MINIMUM_VERSION = (1, 14)
INSTALL = (
    "install the terraform CLI (>= 1.14) from "
    "https://developer.hashicorp.com/terraform/install and put it on PATH, "
    "or set TERRAFORM=/path/to/terraform"
)


@pytest.fixture(scope="session")
def terraform_cli() -> str:
    """The terraform CLI, checked to be recent enough."""
    cli = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not cli:
        message = f"no terraform CLI ($TERRAFORM unset, none on PATH): {INSTALL}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    out = subprocess.run(
        [cli, "version", "-json"], capture_output=True, text=True, timeout=60, check=True
    )
    version = json.loads(out.stdout)["terraform_version"]
    if tuple(int(p) for p in version.split(".")[:2]) < MINIMUM_VERSION:
        pytest.fail(f"{cli} is terraform {version}: {INSTALL}")
    return cli


@pytest.fixture
def provider_dir(tmp_path: Path) -> Path:
    """A directory holding ``terraform-provider-<name>``, as Terraform's dev_overrides
    want it: the console script ``pip install`` made, or a launcher for the sources."""
    directory = tmp_path / "provider"
    directory.mkdir()
    target = directory / EXECUTABLE
    installed = Path(sys.executable).parent / EXECUTABLE
    if installed.exists():
        target.symlink_to(installed)
    else:  # not installed: run the package from src/ with this Python
        target.write_text(
            f"#!/bin/sh\nPYTHONPATH={str(ROOT / 'src')!r} "
            f'exec {sys.executable!r} -m {{ cookiecutter.package_name }} "$@"\n'
        )
        target.chmod(0o755)
    return directory


class Terraform:
    """``terraform`` in a fresh working directory holding ``examples/main.tf``, with its
    own HOME and CLI configuration: the provider comes from a dev override, nothing is
    fetched from the network and ``terraform init`` is not needed."""

    def __init__(self, cli: str, root: Path, provider_dir: Path) -> None:
        self.cli = cli
        self.dir = root / "work"
        self.dir.mkdir(parents=True)
        shutil.copy(EXAMPLE, self.dir / "main.tf")
        (root / "home").mkdir()
        rc = root / "terraform.rc"
        override = f"{json.dumps(SOURCE)} = {json.dumps(str(provider_dir))}"
        rc.write_text(
            "provider_installation {\n"
            "  dev_overrides {\n    " + override + "\n  }\n"
            "  direct {}\n"
            "}\n"
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root / "home"),
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """``terraform <args>``; with ``ok``, a failure fails the test with its output."""
        proc = subprocess.run(
            [self.cli, *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if ok and proc.returncode != 0:
            command = " ".join(args)
            pytest.fail(f"terraform {command}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        """``terraform <args>`` (one of them ``-json``), its output parsed."""
        return json.loads(self.run(*args).stdout)

    def plan(self, *args: str) -> dict[str, dict[str, Any]]:
        """``terraform plan -out=tfplan``: the planned change per resource address
        (``actions``, ``after``, ``after_unknown``, ... of ``terraform show -json``)."""
        self.run("plan", "-out=tfplan", *args)
        plan = self.json("show", "-json", "tfplan")
        return {c["address"]: c["change"] for c in plan.get("resource_changes", [])}

    def state(self) -> dict[str, Any]:
        """The raw state file (``terraform.tfstate``), parsed."""
        state: dict[str, Any] = json.loads((self.dir / "terraform.tfstate").read_text())
        return state

    def apply(self, *args: str) -> dict[str, Any]:
        """``terraform apply tfplan`` (the last plan; ``args``: e.g. ephemeral variables,
        which a plan never stores); returns the outputs' values."""
        self.run("apply", *args, "tfplan")
        return {name: o["value"] for name, o in self.json("output", "-json").items()}


@pytest.fixture
def terraform(terraform_cli: str, provider_dir: Path, tmp_path: Path) -> Terraform:
    return Terraform(terraform_cli, tmp_path, provider_dir)
