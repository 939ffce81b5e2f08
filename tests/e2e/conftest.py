"""Session fixtures for the install tests: the wheelhouse, built once per session.

``wheelhouse`` is what a user gets from ``bash scripts/wheelhouse.sh DIR`` in a checkout
(the plugwire distributions only). ``install_wheels`` is that wheelhouse plus the
third-party wheels the rendered template projects need (their plugwire extras'
dependencies, pytest, trio, ruff and the hatchling build backend), fetched from the
package index once and kept under ``$PLUGWIRE_CACHE/pip-wheels`` (default
``~/.cache/plugwire``): the package index mirror here sends no cache headers, so pip's
own cache keeps nothing, and a clean venv per rendered project would otherwise download
grpcio and ruff a dozen times. Installing from it with ``PIP_NO_INDEX=1`` is the README's
route with the network step done once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.gobuild import cache_dir  # type: ignore[import-not-found,unused-ignore]
from support.installs import (  # type: ignore[import-not-found,unused-ignore]
    clean_env,
    system_python,
)

ROOT = Path(__file__).resolve().parents[2]

#: What the rendered projects' README install lines pull in, beyond plugwire itself:
#: every extra a template depends on, the tools its Develop block names, and the build
#: backend (plus ``editables``) that ``pip install -e .`` needs in its isolated build.
THIRD_PARTY = [
    "plugwire[grpc,ttrpc,http,terraform]",
    "pytest",
    "trio",
    "ruff",
    "hatchling>=1.27",
    "editables",
]


def _link(wheel: Path, into: Path) -> None:
    try:
        os.link(wheel, into / wheel.name)
    except OSError:  # another file system
        shutil.copy2(wheel, into / wheel.name)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bash scripts/wheelhouse.sh DIR``, run once per session."""
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(["bash", str(ROOT / "scripts" / "wheelhouse.sh"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def install_wheels(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's wheelhouse plus the cached third-party wheels, in one directory."""
    shared = cache_dir() / "pip-wheels"
    shared.mkdir(parents=True, exist_ok=True)
    out = tmp_path_factory.mktemp("install-wheels")
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other sessions share the cache
        download = subprocess.run(
            [
                system_python(),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--find-links",
                str(wheelhouse),
                "--dest",
                str(shared),
                *THIRD_PARTY,
            ],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert download.returncode == 0, download.stdout + download.stderr
        for wheel in shared.glob("*.whl"):
            if not wheel.name.startswith("plugwire"):  # never a stale plugwire build
                _link(wheel, out)
        for stale in shared.glob("plugwire*"):
            stale.unlink()
    for wheel in wheelhouse.glob("*.whl"):
        _link(wheel, out)
    return out
