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
    Stub,
)
from plugwire.ttrpc.example import SERVICE, exercise, pb
from plugwire.ttrpc.testing import make_server

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
        stub = Stub(client, SERVICE)
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
        assert (await Stub(small, SERVICE).Echo(pb.EchoPayload(seq=3))).seq == 4
    async with await Client.connect(go_server, max_message_size=8 << 20) as big:
        # Go receives 5 MiB: it discards and answers RESOURCE_EXHAUSTED on that stream
        with pytest.raises(RemoteError) as rinfo:
            await big.call(PROBE, "Inspect", _probe_request(pad="x" * (5 << 20)))
        assert rinfo.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert "exceed maximum message size of 4194304" in rinfo.value.message
        assert (await Stub(big, SERVICE).Echo(pb.EchoPayload(seq=5))).seq == 6


async def test_concurrent_calls_against_go_server(go_server: str) -> None:
    async with await Client.connect(go_server) as client:
        stub = Stub(client, SERVICE)
        seqs: list[int] = []

        async def one(i: int) -> None:
            seqs.append((await stub.Echo(pb.EchoPayload(seq=i))).seq)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
        assert sorted(seqs) == list(range(1, 201))
