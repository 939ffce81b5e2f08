"""Fixtures: the service executables (as ``pip install`` makes them) and a socket dir."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def console_script(tmp_path: Path) -> Callable[[str], str]:
    """``console_script("server")``: a launcher like the one ``pip install`` writes."""

    def make(module: str) -> str:
        script = tmp_path / f"{{ cookiecutter.project_slug }}-{module}"
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
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ttrpc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
