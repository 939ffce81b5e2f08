"""NRI: the socket multiplexer (``u32 conn | u32 length | payload``) fed hostile
frame sequences. Every conn gets exactly its payloads; a bad frame ends the trunk
with a typed error; a hostile length allocates nothing."""

from __future__ import annotations

import contextlib
import socket
import struct
import tracemalloc

import anyio
import anyio.abc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran

from plugwire.core.errors import ConnectionClosedError, ProtocolError
from plugwire.ttrpc.nri.mux import MAX_FRAME_PAYLOAD, Multiplexer

pytestmark = pytest.mark.nri


def _frame(conn: int, payload: bytes, length: int | None = None) -> bytes:
    return struct.pack(">II", conn, len(payload) if length is None else length) + payload


async def _run_mux(wire: bytes) -> tuple[Exception | None, dict[int, bytes]]:
    a, b = socket.socketpair()
    trunk = await anyio.abc.UNIXSocketStream.from_socket(a)
    raw = await anyio.abc.UNIXSocketStream.from_socket(b)
    got: dict[int, bytes] = {1: b"", 2: b""}
    async with Multiplexer(trunk, peer="fuzz") as mux:
        conns = {1: mux.open(1), 2: mux.open(2)}
        async with anyio.create_task_group() as tg:

            async def drain(cid: int) -> None:
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        got[cid] += await conns[cid].receive()

            for cid in conns:
                tg.start_soon(drain, cid)
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await raw.send(wire)
            await raw.aclose()
            with anyio.fail_after(5):
                await mux.closed.wait()
    return mux.error, got


frames = st.one_of(
    st.builds(_frame, st.sampled_from([1, 2, 3, 0, 2**32 - 1]), st.binary(max_size=200)),
    st.builds(
        lambda conn, length: _frame(conn, b"", length),
        st.sampled_from([1, 2, 7]),
        st.sampled_from([MAX_FRAME_PAYLOAD + 1, 2**31, 2**32 - 1]),
    ),
    st.binary(min_size=1, max_size=12),  # garbage / a cut header
)


@fuzz_settings(0.7)
@given(st.lists(frames, max_size=10))
@example([_frame(1, b"", 2**32 - 1)])
@example([_frame(1, b"abc"), _frame(2, b"de"), _frame(3, b"dropped"), b"\0\0"])
def test_frames_reach_their_conn_or_end_the_trunk_with_a_typed_error(parts: list[bytes]) -> None:
    ran("nri mux frames")
    wire = b"".join(parts)
    error, got = anyio.run(_run_mux, wire)
    assert error is None or isinstance(error, (ProtocolError, ConnectionClosedError)), error
    # what the reference reader delivers up to the first bad frame
    want: dict[int, bytes] = {1: b"", 2: b""}
    pos = 0
    bad = False
    while len(wire) - pos >= 8:
        conn, size = struct.unpack_from(">II", wire, pos)
        if size > MAX_FRAME_PAYLOAD:
            bad = True
            break
        if pos + 8 + size > len(wire):
            break
        if conn in want:
            want[conn] += wire[pos + 8 : pos + 8 + size]
        pos += 8 + size
    assert got == want
    assert isinstance(error, ProtocolError) if bad else error is None


async def _hostile_length() -> tuple[Exception | None, int]:
    tracemalloc.start()
    try:
        error, _ = await _run_mux(_frame(1, b"x" * 1000, 2**32 - 1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def test_a_4_gib_frame_length_is_refused_without_allocating_it() -> None:
    error, peak = anyio.run(_hostile_length)
    assert isinstance(error, ProtocolError) and "maximum is" in error.message
    assert peak < 4 * 1024 * 1024, peak
