"""kube: the container log follower's line splitting (timestamps, partial lines,
floods without a newline) fed arbitrary chunks through a fake log response."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran

from plugwire.core._pipes import MAX_LINE_BYTES
from plugwire.kube.logs import LogLine, _Follower, _split

pytestmark = pytest.mark.kube


class _Response:
    def __init__(self, chunks: list[bytes], follower: _Follower) -> None:
        self.chunks = chunks
        self.follower = follower

    def stream(self, size: int, decode_content: bool = True) -> Any:
        yield from self.chunks
        self.follower.stopped.set()  # one response, then the follower stops

    def release_conn(self) -> None:
        pass


class _Core:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.follower: _Follower | None = None

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> _Response:
        assert self.follower is not None
        return _Response(self.chunks, self.follower)


class _API:
    timeout = 5.0

    def __init__(self, chunks: list[bytes]) -> None:
        self.core = _Core(chunks)


async def _follow(chunks: list[bytes]) -> list[LogLine]:
    api = _API(chunks)
    follower = _Follower(api, "ns", "pod", "c", 0.01)  # type: ignore[arg-type]
    api.core.follower = follower
    got: list[LogLine] = []

    async def send(line: LogLine) -> None:
        got.append(line)

    await anyio.to_thread.run_sync(follower.run, send)
    assert follower.last_error is None, follower.last_error
    return got


stamps = st.sampled_from(
    [b"2024-01-01T00:00:00.000000001Z ", b"2024-01-01T00:00:00Z ", b"", b"1999Z ", b"abcdZ "]
)
log_lines = st.builds(lambda ts, text: ts + text, stamps, st.binary(max_size=60))


@fuzz_settings(0.5)
@given(
    st.lists(log_lines, max_size=8).map(b"\n".join),
    st.lists(st.integers(1, 64), min_size=1, max_size=6),
)
@example(b"2024-01-01T00:00:00Z " + b"x" * (3 * MAX_LINE_BYTES) + b"\nnext", [4096])
def test_follower_delivers_bounded_lines_for_any_chunking(data: bytes, cuts: list[int]) -> None:
    ran("kube log lines")
    chunks = []
    pos = i = 0
    while pos < len(data):
        chunks.append(data[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
    got = anyio.run(_follow, chunks)
    expected_lines = data.split(b"\n") if data else []
    if expected_lines and not expected_lines[-1]:
        expected_lines.pop()
    # a line repeated with an older-or-equal timestamp is dropped (reconnect dedup)
    assert len(got) <= len(expected_lines)
    for line in got:
        assert len(line.encode()) <= MAX_LINE_BYTES + 64
        assert "\n" not in line
    if len(data) > MAX_LINE_BYTES:
        assert "line truncated" in got[0] and got[-1] == "next"


@fuzz_settings(2)
@given(st.binary(max_size=120))
def test_split_separates_a_timestamp_or_keeps_the_line(raw: bytes) -> None:
    ran("kube log timestamp split")
    ts, text = _split(raw)
    assert not ts or (ts[:4].isdigit() and ts.endswith("Z"))
    whole = raw.decode("utf-8", "replace").rstrip("\r\n")
    assert (f"{ts} {text}" if ts else text) == whole
