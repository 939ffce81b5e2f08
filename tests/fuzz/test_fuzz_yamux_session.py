"""yamux: the header decoder and the session state machine fed hostile frame
sequences. The session either keeps working or ends with a typed error; nothing
else escapes, no task crashes, memory follows what arrived, not what was announced."""

from __future__ import annotations

import contextlib
import logging
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
from plugwire.grpc import yamux
from plugwire.grpc.yamux import Flag, FrameType, YamuxConfig, YamuxTimeoutError

pytestmark = pytest.mark.goplugin

QUIET = YamuxConfig(enable_keepalive=False)
TYPED = (ProtocolError, ConnectionClosedError, YamuxTimeoutError)


@fuzz_settings(3)
@given(st.binary(min_size=0, max_size=24))
def test_decode_header_returns_a_header_or_raises_protocol_error(data: bytes) -> None:
    ran("yamux header")
    try:
        header = yamux.decode_header(data)
    except ProtocolError as exc:
        assert exc.expected and exc.seen
        return
    assert header.encode() == data[: yamux.HEADER_SIZE]


def _frame(type_: int, flags: int, sid: int, length: int, payload: bytes) -> bytes:
    return bytes([0, type_]) + struct.pack(">HII", flags, sid, length) + payload


frame_st = st.one_of(
    # data frames whose announced length matches the payload
    st.builds(
        lambda flags, sid, payload: _frame(0, flags, sid, len(payload), payload),
        st.integers(0, 15),
        st.sampled_from([0, 1, 2, 3, 4, 2**32 - 1]),
        st.binary(max_size=300),
    ),
    # any header with any length (window updates, pings, go-aways; lies about data)
    st.builds(
        lambda type_, flags, sid, length: _frame(type_, flags, sid, length, b""),
        st.sampled_from([0, 1, 1, 2, 3, 4, 255]),
        st.integers(0, 2**16 - 1),
        st.sampled_from([0, 1, 2, 3, 4, 5, 2**31, 2**32 - 1]),
        st.sampled_from([0, 1, 2**18, 2**31, 2**32 - 1]),
    ),
    st.binary(min_size=1, max_size=16),  # raw garbage
)


async def _session_against(wire: bytes, client: bool) -> BaseException | None:
    a, b = socket.socketpair()
    sa = await anyio.abc.SocketStream.from_socket(a)
    raw = await anyio.abc.SocketStream.from_socket(b)
    async with yamux.Session(sa, client=client, config=QUIET, name="fuzz") as session:
        async with anyio.create_task_group() as tg:

            async def drain() -> None:  # read what the session answers
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    while await raw.receive():
                        pass

            tg.start_soon(drain)
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await raw.send(wire)
                await raw.send_eof()
            with anyio.fail_after(5):
                await session.wait_closed()
            tg.cancel_scope.cancel()
        await raw.aclose()
        return session.error


@fuzz_settings(0.7)
@given(st.lists(frame_st, min_size=1, max_size=10).map(b"".join), st.booleans())
@example(_frame(0, Flag.SYN, 2, 2**32 - 1, b"x" * 10), True)  # 4 GiB data frame
@example(_frame(1, Flag.SYN, 2, 2**32 - 1, b"") * 2, True)  # window overflow
@example(_frame(2, Flag.SYN, 0, 7, b""), False)  # ping
@example(_frame(3, 0, 0, 2**32 - 1, b""), False)  # unknown go-away code
def test_hostile_frame_sequences_end_the_session_with_typed_errors(
    wire: bytes, client: bool
) -> None:
    ran("yamux session")
    handler = _Crashes()
    logging.getLogger("plugwire").addHandler(handler)
    try:
        error = anyio.run(_session_against, wire, client)
    finally:
        logging.getLogger("plugwire").removeHandler(handler)
    assert isinstance(error, TYPED), repr(error)
    assert not handler.crashes, handler.crashes


class _Crashes(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.crashes.append(self.format(record))


async def _announce_4gib_and_trickle() -> tuple[BaseException | None, int]:
    a, b = socket.socketpair()
    sa = await anyio.abc.SocketStream.from_socket(a)
    raw = await anyio.abc.SocketStream.from_socket(b)
    tracemalloc.start()
    try:
        async with yamux.Session(sa, client=True, config=QUIET, name="fuzz") as session:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await raw.send(yamux.encode_header(FrameType.DATA, Flag.SYN, 2, 2**32 - 1))
                for _ in range(16):
                    await raw.send(b"z" * 65536)
            with anyio.fail_after(5):
                await session.wait_closed()
            _, peak = tracemalloc.get_traced_memory()
            await raw.aclose()
            return session.error, peak
    finally:
        tracemalloc.stop()


def test_a_4_gib_data_frame_is_refused_without_allocating_it() -> None:
    error, peak = anyio.run(_announce_4gib_and_trickle)
    assert isinstance(error, ProtocolError), error
    assert peak < 8 * 1024 * 1024, peak
