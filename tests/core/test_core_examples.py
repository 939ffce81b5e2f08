"""The runnable examples under docs/examples/core run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "core"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_core_host_example(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "host.py"), backend],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "handshake: 1|2|upper",
        "hello -> HELLO",
        "plugwire -> PLUGWIRE",
        "exit status: 0",
    ]
    assert "stdin closed: exiting" in proc.stderr
