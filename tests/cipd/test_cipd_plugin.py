"""The plugin side on its own: bad handshakes, refused tickets, trio, stdin EOF."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from plugwire.core.errors import TransportNotAvailableError
from plugwire.grpc.cipd import CipdHost, plugin

MODES = Path(__file__).parent / "plugins" / "modes.py"
ARGV = [sys.executable, str(MODES), "normal"]


async def run_plugin(stdin: bytes) -> tuple[int, str]:
    with anyio.fail_after(60):
        proc = await anyio.run_process(ARGV, input=stdin, check=False)
    return proc.returncode, proc.stderr.decode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "stdin closed before the handshake"),
        (b'{"port": 1}\n', "incomplete handshake"),
        (b"x" * 100_000, "malformed handshake"),
    ],
)
async def test_bad_handshakes_exit_1_with_a_typed_message(stdin: bytes, message: str) -> None:
    code, stderr = await run_plugin(stdin)
    assert code == 1
    assert message in stderr
    assert "step='handshake'" in stderr


async def run_with_open_stdin(line: bytes, linger: float) -> tuple[int | None, int, str]:
    """Write ``line``, keep stdin open up to ``linger`` s, then close it.

    Returns (exit status within ``linger`` or None, final exit status, stderr).
    """
    async with await anyio.open_process(ARGV) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        await proc.stdin.send(line)
        exited_early: int | None = None
        with anyio.move_on_after(linger):
            exited_early = await proc.wait()
        await proc.stdin.aclose()
        with anyio.fail_after(30):
            final = await proc.wait()
        stderr = b""
        async for chunk in proc.stderr:
            stderr += chunk
    return exited_early, final, stderr.decode()


@pytest.mark.anyio
async def test_a_refused_ticket_exits_1_naming_the_status() -> None:
    async with CipdHost(service_url="https://x") as host:
        line = json.dumps({"port": host.port, "ticket": "not-the-ticket"}).encode() + b"\n"
        code, _, stderr = await run_with_open_stdin(line, linger=30)
    assert code == 1  # on its own, without waiting for stdin EOF
    assert "[PERMISSION_DENIED] invalid ticket in the request" in stderr
    assert "step='ListAdmissions'" in stderr


@pytest.mark.anyio
async def test_an_unreachable_host_reads_as_going_away() -> None:
    # Nobody listens on the port: ListAdmissions fails UNAVAILABLE, which (as in luci's
    # plugins) means the host is going away; the plugin waits for stdin EOF, then exits 0.
    code, final, stderr = await run_with_open_stdin(b'{"port": 9, "ticket": "x"}\n', linger=1.5)
    assert code is None, stderr  # still running after 1.5 s
    assert final == 0, stderr


def test_serve_async_refuses_trio() -> None:
    async def handler(adm: plugin.Admission, info: plugin.InstanceInfo) -> None:
        return None

    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(TransportNotAvailableError, match="asyncio"):
            anyio.run(lambda: plugin.serve_async(handler, stdin_fd=read_fd), backend="trio")
    finally:
        os.close(read_fd)
        os.close(write_fd)
