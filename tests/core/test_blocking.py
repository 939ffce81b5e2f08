from __future__ import annotations

import sys

import pytest

from plugwire.core import ClosedError
from plugwire.core.blocking import BlockingHost, run

CAT = [sys.executable, "-c", "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_host(backend: str) -> None:
    with BlockingHost(backend=backend) as host:
        proc = host.launch("rev", CAT, env={}, stdin=True, polite_signal=None)
        host.call(proc.write_stdin, b"hello\n")
        assert host.call(proc.readline_stdout, 20) == "olleh"
        host.close("rev")
        assert proc.returncode == 0
    with pytest.raises(ClosedError):
        host.call(proc.wait)


def test_run() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert run(add, 2, 3) == 5
    assert run(add, 2, 3, backend="trio") == 5
