"""plugwire.ttrpc against the real containerd/ttrpc (newest release), both directions.

The Go peer (tests/interop/ttrpc/cmd/ttrpcpeer) serves and calls the upstream
``integration/streaming`` service plus a unary Probe service with metadata,
deadlines, status details and oversized messages.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from google.protobuf import any_pb2, struct_pb2
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.ttrpc import (
    Client,
    DeadlineExceededError,
    MethodHandler,
    OversizedMessageError,
    Server,
    ServerContext,
    ServiceClient,
)
from plugwire.ttrpc._envelope import decode_response, encode_request
from plugwire.ttrpc._frame import encode_frame
from plugwire.ttrpc.example import SERVICE, exercise, pb
from plugwire.ttrpc.testing import RawPeer, make_server

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PROBE = "plugwire.interop.Probe"


@pytest.fixture(scope="module")
def peer_binary() -> Path:
    binary: Path = build_go("ttrpc", "./cmd/ttrpcpeer")
    return binary


def _probe_request(**fields: Any) -> bytes:
    s = struct_pb2.Struct()
    s.update(fields)
    return s.SerializeToString()


async def _inspect(payload: bytes, ctx: ServerContext) -> bytes:
    """Python twin of the Go peer's Probe.Inspect."""
    req = struct_pb2.Struct.FromString(payload)
    f = req.fields
    if "sleep_ms" in f:
        await anyio.sleep(f["sleep_ms"].number_value / 1000)
    if "fail_code" in f:
        detail = any_pb2.Any()
        detail.Pack(struct_pb2.Struct(fields={"why": struct_pb2.Value(string_value="asked to")}))
        raise RemoteError(
            f["fail_message"].string_value,
            code=int(f["fail_code"].number_value),
            details=[detail.SerializeToString()],
        )
    out = struct_pb2.Struct()
    out.update({"metadata": {k: list(v) for k, v in ctx.metadata.items()}})
    remaining = ctx.time_remaining()
    if remaining is not None:
        out.update({"deadline_ms": int(remaining * 1000)})
    if "reply_size" in f:
        out.update({"pad": "p" * int(f["reply_size"].number_value)})
    return out.SerializeToString()


def _server() -> Server:
    server: Server = make_server(max_message_size=1 << 20)
    server.register(PROBE, {"Inspect": MethodHandler(_inspect)})
    return server


@pytest.fixture
async def go_server(peer_binary: Path, tmp_path: Path) -> AsyncIterator[str]:
    path = str(tmp_path / "go.sock")
    async with await anyio.open_process([str(peer_binary), "server", path]) as proc:
        assert proc.stdout is not None
        try:
            with anyio.fail_after(10):
                line = await proc.stdout.receive()
            assert line.startswith(b"READY"), line
            yield f"unix:{path}"
        finally:
            proc.terminate()


EXPECTED_GO_CASES = {
    "Echo",
    "EchoStream",
    "SumStream",
    "DivideStream",
    "EchoNull",
    "EchoNullStream",
    "EmptyPayloadStream",
    "Metadata",
    "StatusDetails",
    "DeadlineExpires",
    "DeadlineMet",
    "ServerEnforcesDeadline",
    "OversizedRequestRefusedBySender",
    "OversizedRequestDiscardedByServer",
    "OversizedReplyRefusedByServer",
    "Concurrent",
}


async def test_go_client_against_plugwire_server(peer_binary: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "py.sock")
    async with _server().listen(f"unix:{path}"):
        with anyio.fail_after(60):
            result = await anyio.run_process([str(peer_binary), "client", path], check=False)
    cases = [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]
    failed = [c for c in cases if not c["ok"]]
    assert failed == [], f"{failed}\nstderr: {result.stderr.decode()[-2000:]}"
    assert {c["case"] for c in cases} == EXPECTED_GO_CASES
    assert result.returncode == 0


async def test_every_streaming_method_against_go_server(go_server: str) -> None:
    async with await Client.connect(go_server) as client:
        results = await exercise(client)
    assert [r for r in results if not r[1]] == []
    assert {r[0] for r in results} == {m.name for m in SERVICE.methods}


async def test_metadata_deadline_and_details_from_go(go_server: str) -> None:
    async with await Client.connect(go_server) as client:
        reply = struct_pb2.Struct.FromString(
            await client.call(
                PROBE,
                "Inspect",
                _probe_request(),
                timeout=5,
                metadata={"x-a": ["1", "2"], "b": "3"},
            )
        )
        got = json.loads(
            json.dumps(dict(reply.fields["metadata"].struct_value.items()), default=list)
        )
        assert got == {"x-a": ["1", "2"], "b": ["3"]}
        assert 4000 <= reply.fields["deadline_ms"].number_value <= 5000
        with pytest.raises(RemoteError) as info:
            await client.call(PROBE, "Inspect", _probe_request(fail_code=7, fail_message="go away"))
        assert (info.value.code, info.value.message) == (StatusCode.PERMISSION_DENIED, "go away")
        detail = any_pb2.Any.FromString(info.value.details[0])
        s = struct_pb2.Struct()
        assert detail.Unpack(s) and s.fields["why"].string_value == "asked to"


async def test_deadline_expires_against_go_server(go_server: str) -> None:
    async with await Client.connect(go_server) as client:
        start = anyio.current_time()
        with pytest.raises(DeadlineExceededError):
            await client.call(PROBE, "Inspect", _probe_request(sleep_ms=5000), timeout=0.3)
        assert anyio.current_time() - start < 2
        stub = ServiceClient(client, SERVICE)
        assert (await stub.Echo(pb.EchoPayload(seq=1), timeout=5)).seq == 2


async def test_oversized_both_ways_against_go_server(go_server: str) -> None:
    async with await Client.connect(go_server, max_message_size=1 << 20) as small:
        # receiving: Go sends 2 MiB, we discard it and fail only that call
        with pytest.raises(OversizedMessageError) as info:
            await small.call(PROBE, "Inspect", _probe_request(reply_size=2 << 20))
        assert info.value.code == StatusCode.RESOURCE_EXHAUSTED
        # sending: refused locally, nothing written
        with pytest.raises(OversizedMessageError):
            await small.call(PROBE, "Inspect", _probe_request(pad="x" * (2 << 20)))
        assert (await ServiceClient(small, SERVICE).Echo(pb.EchoPayload(seq=3))).seq == 4
    async with await Client.connect(go_server, max_message_size=8 << 20) as big:
        # Go receives 5 MiB: it discards and answers RESOURCE_EXHAUSTED on that stream
        with pytest.raises(RemoteError) as rinfo:
            await big.call(PROBE, "Inspect", _probe_request(pad="x" * (5 << 20)))
        assert rinfo.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert "exceed maximum message size of 4194304" in rinfo.value.message
        assert (await ServiceClient(big, SERVICE).Echo(pb.EchoPayload(seq=5))).seq == 6


async def test_concurrent_calls_against_go_server(go_server: str) -> None:
    async with await Client.connect(go_server) as client:
        stub = ServiceClient(client, SERVICE)
        seqs: list[int] = []

        async def one(i: int) -> None:
            seqs.append((await stub.Echo(pb.EchoPayload(seq=i))).seq)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
        assert sorted(seqs) == list(range(1, 201))


# ---- the same raw frames to the Go server and to the plugwire server --------------

SVC = SERVICE.full_name


async def _raw_scenario(peer: RawPeer) -> list[tuple[object, ...]]:
    """Protocol violations and edge cases; returns each reply normalised."""
    out: list[tuple[object, ...]] = []

    async def status() -> None:
        frame = await peer.frame(timeout=5)
        if frame.type != 2:
            out.append(("frame", frame.stream_id, frame.type, frame.flags, frame.data))
            return
        st, payload = decode_response(frame.data)
        message = st.message
        for prefix in ("unmarshal request error:", "ttrpc: error unmarshalling payload:"):
            if message.startswith(prefix):
                message = prefix + " ..."  # the protobuf parser's own words differ
        out.append(("response", frame.stream_id, st.code, message, payload))

    echo = pb.EchoPayload(seq=1, msg="x").SerializeToString()
    await peer.request(2, SVC, "Echo", echo)  # even id
    await status()
    await peer.request(5, SVC, "Echo", echo)
    await status()
    await peer.request(3, SVC, "Echo", echo)  # lower id
    await status()
    await peer.request(5, SVC, "Echo", echo)  # same id
    await status()
    await peer.send(encode_frame(9, 3, 0, b"x"))  # data, unknown stream
    await status()
    await peer.request(11, "no.Such", "Echo")
    await status()
    await peer.request(13, SVC, "Nope")
    await status()
    await peer.send(encode_frame(15, 1, 0, b"\x0a\xff\xff"))  # not a Request
    await status()
    await peer.send(encode_frame(17, 0x7F, 0, b"junk"))  # unknown type: ignored
    await peer.request(19, SVC, "Echo", echo)
    await status()
    # a closing data frame that carries data
    await peer.request(21, SVC, "SumStream", flags=0x2)
    await peer.send(encode_frame(21, 3, 0, pb.Part(add=5).SerializeToString()))
    await peer.send(encode_frame(21, 3, 0x1, pb.Part(add=6).SerializeToString()))
    await status()
    await status()
    # server streaming frames (num=3 divides deterministically: 0, sum, 0)
    await peer.request(
        23, SVC, "DivideStream", pb.Sum(sum=10, num=3).SerializeToString(), flags=0x1
    )
    for _ in range(4):
        await status()
    # a deadline the server must enforce (no local one here)
    await peer.send(
        encode_frame(
            25, 1, 0, encode_request(PROBE, "Inspect", _probe_request(sleep_ms=3000), 100_000_000)
        )
    )
    await status()
    # an oversized request is discarded, the connection lives
    big = encode_request(SVC, "Echo", b"\x00" * (4 << 20))
    await peer.send(encode_frame(27, 1, 0, big))
    await status()
    await peer.request(29, SVC, "Echo", echo)
    await status()
    # a client-streamed message that does not decode
    await peer.request(31, SVC, "SumStream", flags=0x2)
    await peer.send(encode_frame(31, 3, 0, b"\xff\xff"))
    await status()
    # a negative timeout is a deadline that has already passed
    await peer.send(
        encode_frame(33, 1, 0, encode_request(PROBE, "Inspect", _probe_request(sleep_ms=3000), -1))
    )
    await status()
    return out


async def _raw_peer(address: str) -> AsyncIterator[RawPeer]:
    stream = await anyio.connect_unix(address.removeprefix("unix:"))
    try:
        yield RawPeer(stream)
    finally:
        await stream.aclose()


async def test_raw_frames_answered_like_go(go_server: str, tmp_path: Path) -> None:
    async for go_peer in _raw_peer(go_server):
        go_replies = await _raw_scenario(go_peer)
    server = make_server()
    server.register(PROBE, {"Inspect": MethodHandler(_inspect)})
    async with server.listen(f"unix:{tmp_path / 'raw.sock'}") as bound:
        async for py_peer in _raw_peer(str(bound)):
            py_replies = await _raw_scenario(py_peer)
    assert py_replies == go_replies
    # and what that is, spelled out
    codes = [r[2] for r in go_replies if r[0] == "response"]
    assert codes[:8] == [3, 0, 3, 3, 3, 12, 12, 3]
    assert ("response", 25, 4, "context deadline exceeded", b"") in go_replies
    by_sid = {r[1]: r for r in go_replies if r[0] == "response"}
    assert by_sid[27][2] == StatusCode.RESOURCE_EXHAUSTED
    assert by_sid[31][2:4] == (StatusCode.INTERNAL, "ttrpc: error unmarshalling payload: ...")
    assert by_sid[33][2:4] == (StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
