"""Fixtures: the plugin executable (as ``pip install`` makes it) and a task runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


@pytest.fixture
def plugin_command(tmp_path: Path) -> list[str]:
    """A launcher like the console script ``pip install`` writes."""
    script = tmp_path / "{{ cookiecutter.project_slug }}-plugin"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from {{ cookiecutter.package_name }}.plugin import main\n"
        "main()\n"
    )
    script.chmod(0o755)
    return [str(script)]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
