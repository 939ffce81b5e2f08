"""A plugin flooding stdout and stderr with megabytes (no newline, hostile JSON log
lines): host memory stays bounded, lines come out truncated with a marker, and the
plugin's handle keeps working."""

from __future__ import annotations

import logging
import sys

import anyio
import pytest

from plugwire.core import PluginProcess
from plugwire.core._pipes import MAX_LINE_BYTES, TRUNCATED_MARKER

pytestmark = pytest.mark.anyio

FLOOD_MB = 32
FLOODER = f"""
import sys
chunk = b"x" * (1 << 20)
for _ in range({FLOOD_MB}):
    sys.stdout.buffer.write(chunk)
    sys.stderr.buffer.write(chunk)
sys.stdout.buffer.write(b"\\n")
sys.stderr.buffer.write(b'\\n{{"@message": ' + b"[" * 200000 + b"\\n")
sys.stderr.buffer.write(b'{{"@level": "error", "@message": "still logging"}}\\n')
sys.stdout.buffer.write(b"alive\\n")
sys.stdout.flush(); sys.stderr.flush()
sys.stdin.read()
"""


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_flooding_plugin_output_is_bounded_and_marked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugwire.plugin.flooder")
    before = _rss()
    peak = before
    async with PluginProcess(
        [sys.executable, "-c", FLOODER], env={}, name="flooder", stdin=True
    ) as proc:
        with anyio.fail_after(60):
            first = await proc.readline_stdout(timeout=60)
            peak = max(peak, _rss())
            second = await proc.readline_stdout(timeout=60)
        peak = max(peak, _rss())
        assert first is not None and second == "alive"
        dropped = FLOOD_MB * (1 << 20) - MAX_LINE_BYTES
        assert first == "x" * MAX_LINE_BYTES + TRUNCATED_MARKER.format(n=dropped)
        # stderr: the flood line truncated, the hostile JSON line survived as text,
        # and the log record after it still parsed
        with anyio.fail_after(10):
            while not any("still logging" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110 - polling log records
                await anyio.sleep(0.05)
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.endswith("bytes dropped]") for m in messages)
        assert proc.running
        await proc.close_stdin()
        assert await proc.wait() == 0
    # 2 x 32 MiB went through; the host kept a few line buffers of it
    assert peak - before < 24 * 1024 * 1024, (before, peak)
