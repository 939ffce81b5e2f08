"""Bounded hypothesis fuzzing of the frame decoder, the envelope decoder and the
server's request handling: no input crashes anything, the connection keeps working."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugwire.core.errors import PlugwireError
from plugwire.ttrpc import Client
from plugwire.ttrpc._envelope import (
    EnvelopeError,
    decode_request,
    decode_response,
    encode_response,
)
from plugwire.ttrpc._frame import HEADER_LENGTH, Frame, FrameDecoder, encode_frame
from plugwire.ttrpc.example import pb
from plugwire.ttrpc.testing import RawPeer, make_server, reference_envelope_classes

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


REQ, _RESP = reference_envelope_classes()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_envelope_decoders_raise_only_envelope_error(data: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(data)
        except EnvelopeError:
            pass


def _mutations(valid: bytes, data: st.DataObject) -> bytes:
    if not valid or not data.draw(st.booleans()):
        return valid
    i = data.draw(st.integers(0, len(valid) - 1))
    return valid[:i] + bytes([data.draw(st.integers(0, 255))]) + valid[i + 1 :]


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=20),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.integers(-(2**63), 2**63 - 1),
    st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=3),
    st.data(),
)
def test_request_decoder_agrees_with_protobuf(
    service: str,
    method: str,
    payload: bytes,
    timeout: int,
    md: list[tuple[str, str]],
    data: st.DataObject,
) -> None:
    msg = REQ(service=service, method=method, payload=payload, timeout_nano=timeout)
    for k, v in md:
        msg.metadata.add(key=k, value=v)
    wire = _mutations(msg.SerializeToString(), data)
    try:
        ref = REQ.FromString(wire)
    except Exception:
        ref = None
    try:
        ours = decode_request(wire)
    except EnvelopeError:
        ours = None
    if ref is None:
        return  # protobuf rejects it; ours may be more lenient only about what it skips
    assert ours is not None, wire
    assert (ours.service, ours.method, ours.payload or b"", ours.timeout_nano) == (
        ref.service,
        ref.method,
        ref.payload,
        ref.timeout_nano,
    )
    assert ours.metadata == [(kv.key, kv.value) for kv in ref.metadata]


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


async def _fuzz_client(replies: list[tuple[int, int, int, bytes]]) -> None:
    """A peer answers three pending calls with arbitrary frames, then hangs up:
    every call ends with a reply or a PlugwireError, nothing else escapes."""
    a, b = socket.socketpair()
    peer = await anyio.abc.UNIXSocketStream.from_socket(a)
    outcomes: list[object] = []
    async with await Client.from_socket(b, max_message_size=LIMIT) as client:

        async def call(i: int) -> None:
            try:
                outcomes.append(await client.call("s.S", f"M{i}", b"x", timeout=5))
            except PlugwireError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(call, i)
            dec = FrameDecoder()
            seen = 0
            while seen < 3:
                seen += len(dec.feed(await peer.receive()))
            for sid, typ, flags, data in replies:
                await peer.send(encode_frame(sid, typ, flags, data))
            await peer.aclose()
    assert len(outcomes) == 3


reply_frames = st.lists(
    st.tuples(
        st.sampled_from([1, 3, 5, 7, 2]),
        st.sampled_from([1, 2, 3, 0, 200]),
        st.integers(0, 7),
        st.one_of(
            st.binary(max_size=LIMIT + 32),
            st.builds(lambda p: encode_response(p), st.binary(max_size=20)),
            st.builds(
                lambda c, m: encode_response(None, c, m),
                st.integers(-5, 20),
                st.text(max_size=10),
            ),
        ),
    ),
    max_size=8,
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=40, deadline=None)
@given(reply_frames)
def test_client_survives_any_replies(
    backend: str, replies: list[tuple[int, int, int, bytes]]
) -> None:
    anyio.run(_fuzz_client, replies, backend=backend)
