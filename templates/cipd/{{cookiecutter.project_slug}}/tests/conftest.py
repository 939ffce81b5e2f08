"""Fixtures: the plugin executable, as ``pip install`` makes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def plugin_command(tmp_path: Path) -> list[str]:
    """A launcher like the console script ``pip install`` writes."""
    script = tmp_path / "{{ cookiecutter.plugin_name }}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from {{ cookiecutter.package_name }}.plugin import main\n"
        "main()\n"
    )
    script.chmod(0o755)
    return [str(script)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only
