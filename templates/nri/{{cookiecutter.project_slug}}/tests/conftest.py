"""Fixtures: the plugin executable (as ``pip install`` makes it) and a socket dir."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def plugin_executable() -> Callable[[Path], Path]:
    """``plugin_executable(path)`` writes a launcher like the console script
    ``pip install`` makes, at ``path`` (e.g. ``plugins/NN-name`` for a runtime)."""

    def make(path: Path) -> Path:
        path.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(SRC)!r})\n"
            "from {{ cookiecutter.package_name }}.plugin import main\n"
            "main()\n"
        )
        path.chmod(0o755)
        return path

    return make


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for the runtime's files (unix socket paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="nri-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
