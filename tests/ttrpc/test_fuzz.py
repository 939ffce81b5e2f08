"""Bounded hypothesis fuzzing of the frame decoder, the envelope decoder and the
server's request handling: no input crashes anything, the connection keeps working."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugwire.ttrpc._envelope import EnvelopeError, decode_request, decode_response
from plugwire.ttrpc._frame import HEADER_LENGTH, Frame, FrameDecoder, encode_frame
from plugwire.ttrpc.example import pb
from plugwire.ttrpc.testing import RawPeer, make_server

SVC = "ttrpc.integration.streaming.Streaming"
LIMIT = 256


def _reference(wire: bytes, limit: int) -> list[Frame]:
    out = []
    pos = 0
    while len(wire) - pos >= HEADER_LENGTH:
        length = int.from_bytes(wire[pos : pos + 4], "big")
        sid = int.from_bytes(wire[pos + 4 : pos + 8], "big")
        typ, flags = wire[pos + 8], wire[pos + 9]
        if length > limit:
            out.append(Frame(sid, typ, flags, b"", length))
            pos += HEADER_LENGTH + length
            continue
        if pos + HEADER_LENGTH + length > len(wire):
            break
        out.append(Frame(sid, typ, flags, wire[pos + HEADER_LENGTH : pos + HEADER_LENGTH + length]))
        pos += HEADER_LENGTH + length
    return out


frames_st = st.lists(
    st.tuples(
        st.integers(0, 2**32 - 1),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=LIMIT + 64),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(frames_st, st.binary(max_size=40), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_decoder_matches_reference_for_any_split(
    frames: list[tuple[int, int, int, bytes]], tail: bytes, cuts: list[int]
) -> None:
    wire = b"".join(encode_frame(*f) for f in frames) + tail
    dec = FrameDecoder(LIMIT)
    got: list[Frame] = []
    pos = 0
    i = 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        got.extend(dec.feed(wire[pos : pos + step]))
        pos += step
        i += 1
    assert got == _reference(wire, LIMIT)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_envelope_decoders_raise_only_envelope_error(data: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(data)
        except EnvelopeError:
            pass


async def _fuzz_server(frames: list[tuple[int, int, int, bytes]], backend_garbage: bytes) -> None:
    a, b = socket.socketpair()
    server = make_server(max_message_size=LIMIT)
    done = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve_socket(a)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        stream = await anyio.abc.UNIXSocketStream.from_socket(b)
        peer = RawPeer(stream)
        top = 1
        for sid, typ, flags, data in frames:
            await peer.send(encode_frame(sid, typ, flags, data))
            top = max(top, sid)
        sid = top + 2 if top % 2 else top + 1
        if sid < 2**32:
            await peer.request(sid, SVC, "Echo", pb.EchoPayload(seq=41).SerializeToString())
            with anyio.fail_after(5):
                while True:
                    got = await peer.frame()
                    if got.stream_id == sid and got.type == 2:
                        break
            status, payload = decode_response(got.data)
            assert status.code == 0 and pb.EchoPayload.FromString(payload).seq == 42
        # then garbage and a hang-up: the server returns quietly
        await peer.send(backend_garbage)
        await stream.aclose()
        with anyio.fail_after(5):
            await done.wait()


request_frames = st.lists(
    st.one_of(
        st.tuples(
            st.integers(0, 2**20),
            st.sampled_from([1, 2, 3, 0, 9]),
            st.integers(0, 7),
            st.binary(max_size=LIMIT + 32),
        ),
        st.builds(
            lambda sid, flags, method, payload: (
                sid,
                1,
                flags,
                b"\x0a"
                + bytes([len(SVC)])
                + SVC.encode()
                + b"\x12"
                + bytes([len(method)])
                + method
                + payload,
            ),
            st.integers(0, 2**20),
            st.integers(0, 7),
            st.sampled_from([b"Echo", b"EchoStream", b"SumStream", b"DivideStream", b"Nope"]),
            st.binary(max_size=40),
        ),
    ),
    max_size=12,
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request_frames, st.binary(max_size=64))
def test_server_survives_any_frames(
    backend: str, frames: list[tuple[int, int, int, bytes]], garbage: bytes
) -> None:
    anyio.run(_fuzz_server, frames, garbage, backend=backend)
