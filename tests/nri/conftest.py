"""Fixtures for NRI tests: short socket dirs and the Go peers (adaptation and stub)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from nri_support import GoRuntime
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


@pytest.fixture
async def go_runtime(go_runtime_bin: Path, sockdir: Path) -> AsyncIterator[GoRuntime]:
    log = sockdir / "runtime.log"
    with open(log, "wb") as errf:  # noqa: ASYNC230 (a child stderr needs a real file)
        proc = await anyio.open_process([str(go_runtime_bin)], stderr=errf)
        runtime = GoRuntime(proc, log)
        try:
            yield runtime
        finally:
            with anyio.move_on_after(5, shield=True):
                try:
                    await runtime.cmd("stop", reply_within=5)
                except Exception:
                    pass
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                with anyio.move_on_after(5, shield=True):
                    await proc.wait()
