"""ttrpc: the frame decoder and envelope decoders under hostile input, and a client
whose server answers garbage. Only typed errors, bounded memory."""

from __future__ import annotations

import socket
import tracemalloc

import anyio
import anyio.abc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran

from plugwire.core.errors import PlugwireError
from plugwire.ttrpc import Client
from plugwire.ttrpc._envelope import EnvelopeError, decode_request, decode_response
from plugwire.ttrpc._frame import HEADER_LENGTH, MAX_MESSAGE_SIZE, FrameDecoder, encode_frame

pytestmark = pytest.mark.ttrpc

HOSTILE_LENGTHS = [2**32 - 1, 2**31, MAX_MESSAGE_SIZE + 1, MAX_MESSAGE_SIZE]


@pytest.mark.parametrize("length", HOSTILE_LENGTHS)
def test_a_hostile_length_prefix_allocates_nothing_up_front(length: int) -> None:
    dec = FrameDecoder()
    header = length.to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([1, 0])
    tracemalloc.start()
    try:
        frames = dec.feed(header + b"x" * 100)
        for _ in range(8):  # the peer trickles 8 x 64 KiB of the announced body
            frames += dec.feed(b"y" * 65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if length > MAX_MESSAGE_SIZE:
        # discarded as it arrives and reported, never buffered
        assert [f.oversized for f in frames] == [length]
        assert dec.pending == 0
    else:
        assert frames == [] and dec.pending == HEADER_LENGTH + 100 + 8 * 65536
    # what arrived (at most ~0.6 MiB), never the announced size
    assert peak < 4 * 1024 * 1024, peak


@fuzz_settings()
@given(st.binary(max_size=512))
@example(b"\xff" * 11)  # varint longer than 64 bits
@example(b"\x0a\xff\xff\xff\xff\x0f")  # length-delimited field announcing 4 GiB
@example(b"\x1a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")  # 10-byte varint length
def test_envelope_decoders_only_raise_envelope_error(data: bytes) -> None:
    for name, decode in (("request", decode_request), ("response", decode_response)):
        ran(f"ttrpc envelope {name}")
        try:
            decode(data)
        except EnvelopeError:
            pass


@fuzz_settings()
@given(st.lists(st.integers(1, 4096), min_size=1, max_size=8), st.binary(max_size=4096))
def test_frame_decoder_never_raises_and_buffers_at_most_one_frame(
    cuts: list[int], wire: bytes
) -> None:
    ran("ttrpc frame")
    dec = FrameDecoder(max_size=1024)
    pos = 0
    i = 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        for frame in dec.feed(wire[pos : pos + step]):
            assert frame.oversized or len(frame.data) <= 1024
        pos += step
        i += 1
        assert dec.pending <= HEADER_LENGTH + 1024 + max(cuts)


async def _client_against(answer: bytes) -> BaseException | None:
    a, b = socket.socketpair()
    raw = await anyio.abc.SocketStream.from_socket(b)
    stream = await anyio.abc.SocketStream.from_socket(a)
    outcome: BaseException | None = None
    async with (
        Client.from_stream(stream, peer="fuzz", max_message_size=1024) as client,
        anyio.create_task_group() as tg,
    ):

        async def server() -> None:
            await raw.receive()  # the request
            await raw.send(answer)
            await raw.aclose()  # then hang up

        tg.start_soon(server)
        try:
            with anyio.fail_after(5):
                await client.call("svc", "M", b"payload")
        except PlugwireError as exc:
            outcome = exc
    return outcome


responses = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda sid, typ, flags, data: encode_frame(sid, typ, flags, data),
        st.sampled_from([1, 3, 2**31 - 1]),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=64),
    ),
    st.builds(
        lambda length, rest: length.to_bytes(4, "big") + b"\0\0\0\x01\x02\x00" + rest,
        st.sampled_from(HOSTILE_LENGTHS),
        st.binary(max_size=32),
    ),
)


@fuzz_settings(0.4)
@given(st.lists(responses, max_size=4).map(b"".join))
@example(b"\0\0\0\x05\0\0\0\x01\x02\x00\x0a\x03\x08\x05")  # a truncated Status
def test_a_client_fed_garbage_responses_fails_its_call_with_a_typed_error(answer: bytes) -> None:
    ran("ttrpc client responses")
    # returning normally is fine (a valid reply); anything but PlugwireError escapes
    anyio.run(_client_against, answer)
