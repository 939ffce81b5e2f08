"""Fixtures: the provider executable, and a stand-in for the dr-provision API."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def provider_command(tmp_path: Path) -> list[str]:
    """The provider executable, as ``pip install`` would make it (a console script)."""
    script = tmp_path / "{{ cookiecutter.provider_name }}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from {{ cookiecutter.package_name }}.provider import main\n"
        "main()\n"
    )
    script.chmod(0o755)
    return [str(script)]


@pytest.fixture
def provider_env(anyio_backend: str) -> dict[str, str]:
    """Run the provider on the same anyio backend as the test (asyncio or trio)."""
    return {"PLUGWIRE_ANYIO_BACKEND": anyio_backend}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
