"""Fixtures: the executables, as ``pip install`` makes them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def console_script(tmp_path: Path) -> Callable[[str, str], str]:
    """``console_script(name, module)``: a launcher like the one ``pip install`` writes."""

    def make(name: str, module: str) -> str:
        script = tmp_path / "bin" / name
        script.parent.mkdir(exist_ok=True)
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(SRC)!r})\n"
            f"from {{ cookiecutter.package_name }}.{module} import main\n"
            "main()\n"
        )
        script.chmod(0o755)
        return str(script)

    return make


@pytest.fixture
def plugin_command(console_script: Callable[[str, str], str]) -> list[str]:
    return [console_script("{{ cookiecutter.project_slug }}", "plugin")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only
