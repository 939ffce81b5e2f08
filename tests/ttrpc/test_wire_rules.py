"""The server answers protocol violations exactly as upstream containerd/ttrpc does,
and nothing a peer sends crashes it (raw frames over a socketpair)."""

from __future__ import annotations

import pytest

from plugwire.core.status import StatusCode
from plugwire.ttrpc._envelope import decode_response, encode_request
from plugwire.ttrpc._frame import encode_frame
from plugwire.ttrpc.example import pb
from plugwire.ttrpc.testing import RawPeer

pytestmark = pytest.mark.anyio

SVC = "ttrpc.integration.streaming.Streaming"
INVALID = StatusCode.INVALID_ARGUMENT


async def _echo_ok(peer: RawPeer, sid: int) -> None:
    await peer.request(sid, SVC, "Echo", pb.EchoPayload(seq=sid).SerializeToString())
    got_sid, typ, _flags, data, _ = await peer.frame()
    assert (got_sid, typ) == (sid, 2)
    status, payload = decode_response(data)
    assert status.code == 0
    assert pb.EchoPayload.FromString(payload).seq == sid + 1


async def test_stream_id_rules(raw_peer: RawPeer) -> None:
    await raw_peer.request(2, SVC, "Echo")
    assert await raw_peer.status() == (
        2,
        INVALID,
        "StreamID must be odd for client initiated streams",
    )
    await _echo_ok(raw_peer, 5)
    await raw_peer.request(3, SVC, "Echo")
    assert await raw_peer.status() == (3, INVALID, "StreamID cannot be re-used and must increment")
    await raw_peer.request(5, SVC, "Echo")
    assert await raw_peer.status() == (5, INVALID, "StreamID cannot be re-used and must increment")
    await raw_peer.send(encode_frame(41, 3, 0, b"x"))
    assert await raw_peer.status() == (41, INVALID, "StreamID is no longer active")
    await _echo_ok(raw_peer, 7)


async def test_unknown_service_method_and_bad_request(raw_peer: RawPeer) -> None:
    await raw_peer.request(1, "no.Such", "Echo")
    assert await raw_peer.status() == (1, StatusCode.UNIMPLEMENTED, "service no.Such")
    await raw_peer.request(3, SVC, "Nope")
    assert await raw_peer.status() == (3, StatusCode.UNIMPLEMENTED, "method Nope")
    await raw_peer.send(encode_frame(5, 1, 0, b"\x0a\xff\xff"))
    sid, code, message = await raw_peer.status()
    assert (sid, code) == (5, INVALID) and message.startswith("unmarshal request error:")
    await raw_peer.request(7, SVC, "Echo", b"\xff\xff\xff")
    sid, code, message = await raw_peer.status()
    assert (sid, code) == (7, StatusCode.INTERNAL) and "unmarshalling payload" in message
    await _echo_ok(raw_peer, 9)


async def test_unknown_type_ignored_and_oversized_discarded(raw_peer: RawPeer) -> None:
    await raw_peer.send(encode_frame(1, 0x7F, 0xFF, b"garbage"))
    # the fixture's server limit is 64 KiB: this request is discarded, the stream fails
    big = encode_frame(3, 1, 0, encode_request(SVC, "Echo", b"\x00" * 100_000))
    for i in range(0, len(big), 7000):
        await raw_peer.send(big[i : i + 7000])
    sid, code, message = await raw_peer.status()
    assert (sid, code) == (3, StatusCode.RESOURCE_EXHAUSTED)
    assert message == f"message length {len(big) - 10} exceed maximum message size of 65536"
    await _echo_ok(raw_peer, 5)


async def test_client_stream_data_rules(raw_peer: RawPeer) -> None:
    # SumStream with remote-open; data; a close carrying data is answered InvalidArgument
    await raw_peer.request(1, SVC, "SumStream", flags=0x2)
    await raw_peer.send(encode_frame(1, 3, 0, pb.Part(add=5).SerializeToString()))
    await raw_peer.send(encode_frame(1, 3, 0x1, pb.Part(add=6).SerializeToString()))
    assert await raw_peer.status() == (1, INVALID, "data close message cannot include data")
    sid, typ, _flags, data, _ = await raw_peer.frame()
    status, payload = decode_response(data)
    assert (sid, typ, status.code) == (1, 2, 0)
    assert pb.Sum.FromString(payload) == pb.Sum(sum=11, num=2)
    # a unary stream takes no data
    await raw_peer.request(3, SVC, "SumStream", flags=0x2)
    await raw_peer.send(encode_frame(3, 3, 0x1 | 0x4, b""))
    sid, typ, _flags, data, _ = await raw_peer.frame()
    assert pb.Sum.FromString(decode_response(data)[1]) == pb.Sum()
    await raw_peer.send(encode_frame(3, 3, 0, b""))
    assert await raw_peer.status() == (3, INVALID, "StreamID is no longer active")


async def test_server_streaming_frames(raw_peer: RawPeer) -> None:
    await raw_peer.request(
        1, SVC, "DivideStream", pb.Sum(sum=10, num=4).SerializeToString(), flags=0x1
    )
    adds = []
    while True:
        sid, typ, flags, data, _ = await raw_peer.frame()
        assert (sid, typ) == (1, 3)
        if flags & 0x1:
            assert flags == 0x1 | 0x4 and data == b""
            break
        adds.append(pb.Part.FromString(data).add)
    assert sum(adds) == 10 and len(adds) == 4


async def test_truncated_frame_then_close_does_not_crash(raw_peer: RawPeer) -> None:
    await _echo_ok(raw_peer, 1)
    await raw_peer.send(encode_frame(3, 1, 0, encode_request(SVC, "Echo", b""))[:-3])
    await raw_peer.stream.send_eof()
    with pytest.raises(Exception) as info:
        await raw_peer.frame(timeout=2)
    assert type(info.value).__name__ in (
        "EndOfStream",
        "BrokenResourceError",
        "ClosedResourceError",
    )


async def test_bad_message_in_client_stream(raw_peer: RawPeer) -> None:
    await raw_peer.request(1, SVC, "SumStream", flags=0x2)
    await raw_peer.send(encode_frame(1, 3, 0, b"\xff\xff"))
    sid, code, message = await raw_peer.status()
    assert (sid, code) == (1, StatusCode.INTERNAL)
    assert message.startswith("ttrpc: error unmarshalling payload:")
