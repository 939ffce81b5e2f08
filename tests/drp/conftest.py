from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from drp_support import FakeApi  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.transport import Address
from plugwire.http import HttpServer


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pwd-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def provider_env(anyio_backend: str) -> dict[str, str]:
    """Run Python providers on the same anyio backend as the test."""
    return {"PLUGWIRE_ANYIO_BACKEND": anyio_backend}


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApi]:
    api = FakeApi()
    async with HttpServer(api).serve(Address("tcp", "127.0.0.1:0")) as bound:
        api.endpoint = f"http://{bound.address}"
        yield api
