"""docs/examples/ttrpc runs as documented, and the ttrpc demo rows all pass."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from plugwire.ttrpc._demo import demo

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ttrpc"

pytestmark = pytest.mark.anyio


async def test_example_server_and_client(tmp_path: Path) -> None:
    sock = str(tmp_path / "ex.sock")
    async with await anyio.open_process(
        [sys.executable, str(EXAMPLES / "server.py"), sock]
    ) as server:
        try:
            assert server.stdout is not None
            with anyio.fail_after(20):
                line = await server.stdout.receive()
            assert line.startswith(b"READY"), line
            with anyio.fail_after(30):
                result = await anyio.run_process(
                    [sys.executable, str(EXAMPLES / "client.py"), sock], check=False
                )
        finally:
            server.terminate()
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "Echo -> 2 hi" in out
    assert "EchoStream -> 3" in out
    assert "SumStream -> 45 10" in out
    assert "DivideStream -> [1, 1, 1, 7]" in out
    assert "EchoNull -> [UNIMPLEMENTED]" in out


async def test_demo_rows_all_pass() -> None:
    rows = await demo()
    assert len(rows) == 11
    assert [r for r in rows if not r.ok] == []
    assert all(r.family == "ttrpc" for r in rows)
