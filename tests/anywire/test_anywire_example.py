"""docs/examples/rpc runs as documented: one servicer answers on every installed wire."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from plugwire.core.transport import available_transports

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "rpc" / "serve_everywhere.py"

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_example_serves_on_every_transport(anyio_backend: str) -> None:
    with anyio.fail_after(60):
        result = await anyio.run_process([sys.executable, str(EXAMPLE)], check=False)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    for name in available_transports():
        assert f"{name}: Greet -> hello ada (fr)" in out
        assert f"{name}: GreetMany -> ['hello #0 bob', 'hello #1 bob']" in out
        assert f"{name}: Greet() -> INVALID_ARGUMENT: name is required" in out
