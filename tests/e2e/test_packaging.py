"""Wheels and extras: the meta-package pulls in exactly the sub-distributions asked for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTS = [
    "plugwire",
    "plugwire_core",
    "plugwire_grpc",
    "plugwire_ttrpc",
    "plugwire_http",
    "plugwire_kube",
]

pytestmark = pytest.mark.packaging


def _uv() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else [sys.executable, "-m", "uv"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*_uv(), "build", "--all-packages", "--wheel", "--out-dir", str(out), "--quiet"],
        cwd=ROOT,
        check=True,
    )
    return out


def test_every_distribution_builds_in_lockstep(wheels: Path) -> None:
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert [name.split("-")[0] for name in built] == sorted(DISTS)
    assert {name.split("-")[1] for name in built} == {"0.1.0"}


def test_namespace_package_has_no_init_and_each_has_py_typed(wheels: Path) -> None:
    for wheel in wheels.glob("plugwire_*.whl"):
        names = zipfile.ZipFile(wheel).namelist()
        assert "plugwire/__init__.py" not in names, wheel.name
        module = wheel.name.split("-")[0].removeprefix("plugwire_")
        assert f"plugwire/{module}/py.typed" in names, wheel.name
    meta = zipfile.ZipFile(next(wheels.glob("plugwire-0.1.0-*.whl")))
    requires = meta.read("plugwire-0.1.0.dist-info/METADATA").decode()
    for extra in ("grpc", "ttrpc", "http", "kube"):
        assert f"Requires-Dist: plugwire-{extra}==0.1.0; extra == '{extra}'" in requires
    assert "Requires-Dist: plugwire-core==0.1.0\n" in requires


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def _probe(python: Path, modules: list[str]) -> dict[str, bool]:
    code = (
        "import importlib.util, json, sys;"
        f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {modules!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    import json

    return dict(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("extra", "present", "absent"),
    [
        (
            "ttrpc",
            ["plugwire.core", "plugwire.ttrpc", "google.protobuf"],
            ["grpc", "plugwire.grpc", "httpx"],
        ),
        ("http", ["plugwire.core", "plugwire.http", "httpx"], ["grpc", "plugwire.ttrpc"]),
    ],
)
def test_pip_install_meta_package_with_extra(
    wheels: Path, tmp_path: Path, extra: str, present: list[str], absent: list[str]
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    meta = next(wheels.glob("plugwire-0.1.0-*.whl"))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            str(wheels),
            f"{meta}[{extra}]",
        ],
        check=True,
        env=env,
    )
    found = _probe(python, present + absent)
    assert all(found[m] for m in present), found
    assert not any(found[m] for m in absent), found
    cli = subprocess.run(
        [str(python.parent / "plugwire"), "transports"], capture_output=True, text=True, check=True
    )
    listed = {line.split()[0] for line in cli.stdout.splitlines() if line.strip()}
    assert extra in listed and "inproc" in listed
