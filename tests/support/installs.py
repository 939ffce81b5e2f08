"""A user's fresh shell for install tests: no workspace venv, no pip options of ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """The environment of a user's fresh shell: no workspace venv on PATH, no pip options."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        env.pop(name, None)
    venvs = {str(ROOT / ".venv" / "bin")}
    if sys.prefix != sys.base_prefix:
        venvs.add(str(Path(sys.prefix) / "bin"))
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p.rstrip("/") not in venvs
    )
    return env


def system_python() -> str:
    """``python3`` as a fresh shell finds it (not this test run's interpreter's venv)."""
    candidates = [str(Path(d) / "python3") for d in clean_env()["PATH"].split(os.pathsep) if d] + [
        sys.base_prefix + "/bin/python3",
        "/usr/bin/python3",
    ]
    for candidate in candidates:
        # tox-uv puts uv's own interpreter (no pip) on PATH: take one a user has pip in.
        if (
            os.access(candidate, os.X_OK)
            and subprocess.run(
                [candidate, "-m", "pip", "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return candidate
    found = shutil.which("python3", path=clean_env()["PATH"])
    return found or sys.base_prefix + "/bin/python3"
