from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugwire.core.transport import Address
from plugwire.http import HttpServer, Request, Response

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "drp" / "incrementer.py"
PROVIDERS = HERE / "providers"
TOKEN = "s3cr3t-token"


def python_provider(script: Path) -> list[str]:
    return [sys.executable, str(script)]


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


class FakeApi:
    """The few dr-provision API calls incrementer makes: machine params."""

    def __init__(self) -> None:
        self.params: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str]] = []
        self.endpoint = ""

    async def __call__(self, request: Request) -> Response:
        self.calls.append((request.method, request.path))
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Response.json({"Code": 401, "Messages": ["bad token"]}, 401)
        parts = request.path.strip("/").split("/", 5)
        if len(parts) != 6 or parts[:3] != ["api", "v3", "machines"] or parts[4] != "params":
            return Response.json({"Code": 404, "Messages": [request.path]}, 404)
        key = (parts[3], parts[5])
        if request.method == "GET":
            return Response.json(self.params.get(key))
        if request.method == "POST":
            self.params[key] = json.loads(request.body)
            return Response.json(self.params[key])
        if request.method == "DELETE":
            return Response.json(self.params.pop(key, None))
        return Response.json({"Code": 405}, 405)


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApi]:
    api = FakeApi()
    async with HttpServer(api).serve(Address("tcp", "127.0.0.1:0")) as bound:
        api.endpoint = f"http://{bound.address}"
        yield api
