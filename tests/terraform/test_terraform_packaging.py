"""The documented packaging route (docs/terraform.md, "Packaging for terraform init"),
followed step by step with the example provider: the distributions built from this
checkout by ``scripts/wheelhouse.sh``, installed with their dependencies into ``lib/``
by ``pip install --target --find-links``,
a one-line launcher beside it, both zipped as
``terraform-provider-example_<version>_<os>_<arch>.zip`` into a packed filesystem
mirror. ``terraform init`` installs the zip from the mirror like a release (and locks its
hash), and ``plan``/``apply`` run the provider from what it unpacked: the launcher's
Python sees only the standard library and ``lib/``, and nothing it does changes the
unpacked package (Terraform checks the package against the lock file at every command:
a launch that wrote ``__pycache__`` into ``lib/`` made the next command refuse it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from terraform_support import EXAMPLE_ADDRESS, PLATFORM, Workspace, required_providers

pytestmark = [pytest.mark.interop, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.3.0"
TYPE = "example"
#: The documented launcher, with this test's Python for ``python3.11``.
LAUNCHER = """#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$here/lib" exec {python} -S -B -m plugwire.grpc.terraform.examples.thing "$@"
"""


def _pip_target(lib: Path, wheels: Path) -> None:
    """``pip install --target lib 'plugwire[terraform]'``, the distributions from
    ``wheels`` (they are not on the package index), their dependencies from the index."""
    requirement = "plugwire[terraform]"
    pip = [sys.executable, "-m", "pip"]
    if subprocess.run([*pip, "--version"], capture_output=True).returncode == 0:
        command = [*pip, "install", "--quiet", "--target", str(lib)]
    else:  # a venv made by uv has no pip: uv's own, for this interpreter
        uv = shutil.which("uv")
        command = [
            *([uv] if uv else [sys.executable, "-m", "uv"]),
            *("pip", "install", "--quiet", "--python", sys.executable, "--target", str(lib)),
        ]
    subprocess.run([*command, "--find-links", str(wheels), requirement], check=True, timeout=900)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packed filesystem mirror holding the example provider's zip, made as
    docs/terraform.md says."""
    base = tmp_path_factory.mktemp("packaging")
    wheels = base / "wheelhouse"  # the README's route for the distributions
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "wheelhouse.sh"), str(wheels)], check=True, timeout=900
    )
    build = base / "build"
    _pip_target(build / "lib", wheels)
    compile_all = [sys.executable, "-m", "compileall", "-q", "-f"]
    compile_all += ["--invalidation-mode", "unchecked-hash", str(build / "lib")]
    subprocess.run(compile_all, check=True, timeout=600)
    launcher = build / f"terraform-provider-{TYPE}_v{VERSION}"
    launcher.write_text(LAUNCHER.format(python=sys.executable))
    launcher.chmod(0o755)
    target = base / "mirror" / "registry.terraform.io" / "plugwire" / TYPE
    target.mkdir(parents=True)
    archive = target / f"terraform-provider-{TYPE}_{VERSION}_{PLATFORM}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(build.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(build).as_posix())  # keeps the mode bits
    return base / "mirror"


def test_the_packaged_provider_installs_from_a_filesystem_mirror_and_serves(
    terraform_cli: Path, mirror: Path, tmp_path: Path
) -> None:
    ws = Workspace(terraform_cli, tmp_path / "tf", {}, install="mirror")
    ws.mirror.rmdir()
    ws.mirror.symlink_to(mirror)  # the CLI configuration's filesystem_mirror
    ws.write(
        required_providers().replace('source = "plugwire/example"', 'source = "plugwire/example", '
                                     f'version = "{VERSION}"')
        + 'resource "example_thing" "a" {\n  name = "packaged"\n}\n'
        + 'output "upper" {\n  value = provider::example::upper("zip")\n}\n'
    )  # fmt: skip
    ws.init()
    lock = (ws.dir / ".terraform.lock.hcl").read_text()
    assert f'provider "{EXAMPLE_ADDRESS}"' in lock
    assert re.search(rf'version\s*=\s*"{re.escape(VERSION)}"', lock), lock
    assert re.search(r'"h1:[A-Za-z0-9+/]{43}="', lock), lock  # the package's hash
    unpacked = list((ws.root / "tfdata" / "providers").rglob(f"terraform-provider-{TYPE}_v*"))
    assert len(unpacked) == 1 and os.access(unpacked[0], os.X_OK), unpacked
    assert (unpacked[0].parent / "lib" / "plugwire" / "grpc" / "terraform").is_dir()

    plan = ws.plan()
    assert "Plan: 1 to add" in plan.output
    ws.apply()
    thing = ws.resources()["example_thing.a"]
    assert thing["name"] == "packaged" and thing["id"] == "thing-packaged"
    assert ws.outputs() == {"upper": "ZIP"}
    assert ws.has_changes() is False


def test_the_launcher_runs_without_the_checkouts_environment(mirror: Path, tmp_path: Path) -> None:
    # Run by hand, the unpacked launcher answers as any provider binary does (go-plugin's
    # "This binary is a plugin", exit 1), with nothing but lib/ and the standard library
    # on its path.
    archive = next(mirror.rglob("*.zip"))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
        names = zf.namelist()
    launcher = tmp_path / f"terraform-provider-{TYPE}_v{VERSION}"
    launcher.chmod(0o755)  # extractall does not restore modes; terraform's unzip does
    done = subprocess.run(
        [str(launcher)], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 1 and "This binary is a plugin" in done.stderr, done
    probe = (
        "import json, grpc, google.protobuf, cryptography, msgpack, plugwire.grpc.terraform; "
        "print(json.dumps([m.__file__ for m in (grpc, google.protobuf, cryptography, "
        "msgpack, plugwire.grpc.terraform)]))"
    )
    where = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={"PYTHONPATH": str(tmp_path / "lib"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(str(tmp_path / "lib")) for path in json.loads(where.stdout))
    assert f"terraform-provider-{TYPE}_v{VERSION}" in names
