"""Fixtures for NRI tests: short socket dirs and the Go peers (adaptation and stub)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nri_support import GoRuntime, open_go_runtime
from support.gobuild import build_go


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (paths are limited to ~108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nri-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def go_runtime_bin() -> Path:
    return Path(build_go("nri", "./cmd/nriruntime"))


@pytest.fixture(scope="session")
def go_plugin_bin() -> Path:
    return Path(build_go("nri", "./cmd/nriplugin"))


@pytest.fixture(scope="session")
def go_validator_bin() -> Path:
    """Upstream's default validator (plugins/default-validator) on pkg/stub."""
    return Path(build_go("nri", "./cmd/defaultvalidator"))


@pytest.fixture
async def go_runtime(go_runtime_bin: Path, sockdir: Path) -> AsyncIterator[GoRuntime]:
    async with open_go_runtime(go_runtime_bin, sockdir / "runtime.log") as runtime:
        yield runtime
