"""The frame codec and the hand-written envelope codec."""

from __future__ import annotations

from plugwire.ttrpc._envelope import (
    EnvelopeError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from plugwire.ttrpc._frame import Frame, FrameDecoder, encode_frame
from plugwire.ttrpc.testing import reference_envelope_classes


def test_header_is_big_endian_ten_bytes() -> None:
    assert encode_frame(0x01020304, 3, 5, b"xy") == b"\x00\x00\x00\x02\x01\x02\x03\x04\x03\x05xy"


def test_decoder_handles_any_split() -> None:
    frames = [encode_frame(i * 2 + 1, 1, 0, bytes([i]) * i * 7) for i in range(20)]
    wire = b"".join(frames)
    for step in (1, 3, 10, 11, 64, len(wire)):
        dec = FrameDecoder()
        got: list[Frame] = []
        for i in range(0, len(wire), step):
            got.extend(dec.feed(wire[i : i + step]))
        assert [(f.stream_id, f.data) for f in got] == [
            (i * 2 + 1, bytes([i]) * i * 7) for i in range(20)
        ]
        assert dec.pending == 0


def test_oversized_frame_is_discarded_and_reported() -> None:
    dec = FrameDecoder(max_size=100)
    big = encode_frame(5, 1, 0, b"z" * 1000)
    after = encode_frame(7, 1, 0, b"ok")
    wire = big + after
    got: list[Frame] = []
    for i in range(0, len(wire), 33):
        got.extend(dec.feed(wire[i : i + 33]))
    assert got == [Frame(5, 1, 0, b"", 1000), Frame(7, 1, 0, b"ok")]


def test_truncated_frame_waits() -> None:
    dec = FrameDecoder()
    assert dec.feed(encode_frame(1, 1, 0, b"abcdef")[:-2]) == []
    assert dec.pending == 14


def test_envelope_matches_protobuf() -> None:
    Req, Resp = reference_envelope_classes()
    md = [("a", "1"), ("a", "2"), ("ü", "✓")]
    ours = encode_request("svc.S", "M", b"\x00" * 300, -5, md)
    ref = Req.FromString(ours)
    assert (ref.service, ref.method, ref.payload, ref.timeout_nano) == (
        "svc.S",
        "M",
        b"\x00" * 300,
        -5,
    )
    assert [(kv.key, kv.value) for kv in ref.metadata] == md
    back = decode_request(ref.SerializeToString())
    assert (back.service, back.method, back.payload, back.timeout_nano, back.metadata) == (
        "svc.S",
        "M",
        b"\x00" * 300,
        -5,
        md,
    )
    resp = Resp.FromString(encode_response(b"p", 5, "nope", [b"\x0a\x01x"]))
    assert (resp.status.code, resp.status.message, resp.payload) == (5, "nope", b"p")
    assert resp.status.details[0].type_url == "x"
    status, payload = decode_response(resp.SerializeToString())
    assert (status.code, status.message, status.details, payload) == (
        5,
        "nope",
        (b"\x0a\x01x",),
        b"p",
    )


def test_envelope_rejects_garbage_with_envelope_error() -> None:
    for bad in (b"\x0a\xff", b"\x0a\x05ab", b"\x0f", b"\x00", b"\x0a\x02\xff\xfe", b"\x20\xff"):
        try:
            decode_request(bad)
        except EnvelopeError:
            continue
        raise AssertionError(f"accepted {bad!r}")
