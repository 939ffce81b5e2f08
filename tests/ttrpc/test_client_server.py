"""plugwire ttrpc client against plugwire ttrpc server, on asyncio and trio."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    ProtocolError,
    RemoteError,
)
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address, load_transport
from plugwire.ttrpc import (
    Client,
    CredentialsError,
    DeadlineExceededError,
    MethodHandler,
    OversizedMessageError,
    Server,
    ServerContext,
    ServiceClient,
    peer_credentials,
    require_same_user,
    require_uid_gid,
)
from plugwire.ttrpc import client as client_module
from plugwire.ttrpc._envelope import encode_request
from plugwire.ttrpc._frame import FrameDecoder, encode_frame
from plugwire.ttrpc.client import normalize_metadata
from plugwire.ttrpc.example import SERVICE, exercise, pb
from plugwire.ttrpc.testing import make_server

pytestmark = pytest.mark.anyio


async def _meta(payload: bytes, ctx: ServerContext) -> bytes:
    return json.dumps(
        {"md": [list(p) for p in ctx.invocation_metadata()], "remaining": ctx.time_remaining()}
    ).encode()


async def _sleep(payload: bytes, ctx: ServerContext) -> bytes:
    await anyio.sleep(float(payload))
    return b"slept"


async def _fail(payload: bytes, ctx: ServerContext) -> bytes:
    raise RemoteError("no such thing", code=StatusCode.NOT_FOUND, details=[b"\x0a\x03t/x\x12\x01!"])


async def _boom(payload: bytes, ctx: ServerContext) -> bytes:
    raise ValueError("kaboom")


async def _big(payload: bytes, ctx: ServerContext) -> bytes:
    return b"b" * int(payload)


def test_server(**kwargs: Any) -> Server:
    server: Server = make_server(**kwargs)
    server.register(
        "test.Svc",
        {
            "Meta": MethodHandler(_meta),
            "Sleep": MethodHandler(_sleep),
            "Fail": MethodHandler(_fail),
            "Boom": MethodHandler(_boom),
            "Big": MethodHandler(_big),
        },
    )
    return server


test_server.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
async def tclient(sock_path: str) -> AsyncIterator[Client]:
    async with test_server().listen(sock_path) as bound, await Client.connect(bound) as c:
        yield c


async def test_every_streaming_kind(client: Client) -> None:
    results = await exercise(client)
    assert [r for r in results if not r[1]] == []
    assert len(results) == 7


async def test_metadata_and_deadline_reach_the_handler(tclient: Client) -> None:
    reply = json.loads(
        await tclient.unary("/test.Svc/Meta", b"", timeout=5, metadata={"k": ["a", "b"], "x": "y"})
    )
    assert reply["md"] == [["k", "a"], ["k", "b"], ["x", "y"]]
    assert 4 < reply["remaining"] <= 5
    reply = json.loads(await tclient.unary("/test.Svc/Meta", b""))
    assert reply == {"md": [], "remaining": None}


async def test_status_codes_and_details(tclient: Client) -> None:
    with pytest.raises(RemoteError) as info:
        await tclient.unary("/test.Svc/Fail", b"")
    assert info.value.code == StatusCode.NOT_FOUND
    assert info.value.message == "no such thing"
    assert info.value.details == (b"\x0a\x03t/x\x12\x01!",)
    with pytest.raises(RemoteError) as info:
        await tclient.unary("/test.Svc/Boom", b"")
    assert (info.value.code, info.value.message) == (StatusCode.UNKNOWN, "kaboom")
    with pytest.raises(RemoteError) as info:
        await tclient.unary("/test.Nope/X", b"")
    assert (info.value.code, info.value.message) == (StatusCode.UNIMPLEMENTED, "service test.Nope")
    with pytest.raises(RemoteError) as info:
        await tclient.unary("/test.Svc/X", b"")
    assert (info.value.code, info.value.message) == (StatusCode.UNIMPLEMENTED, "method X")
    stub = ServiceClient(tclient, SERVICE)
    with pytest.raises(RemoteError) as info:
        await stub.Echo(pb.EchoPayload(), metadata={"fail-code": "9", "fail-message": "nah"})
    assert (info.value.code, info.value.message) == (StatusCode.FAILED_PRECONDITION, "nah")
    assert (await stub.Echo(pb.EchoPayload(seq=4))).seq == 5


async def test_client_deadline_expires(tclient: Client) -> None:
    with anyio.fail_after(3):
        with pytest.raises(DeadlineExceededError) as info:
            await tclient.unary("/test.Svc/Sleep", b"10", timeout=0.2)
    assert info.value.code == StatusCode.DEADLINE_EXCEEDED
    assert await tclient.unary("/test.Svc/Sleep", b"0", timeout=2) == b"slept"


async def test_concurrent_calls_on_one_connection(tclient: Client) -> None:
    stub = ServiceClient(tclient, SERVICE)
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        if i % 10 == 0:
            await tclient.unary("/test.Svc/Sleep", b"0.01")
        results[i] = (await stub.Echo(pb.EchoPayload(seq=i, msg=str(i)))).seq

    async with anyio.create_task_group() as tg:
        for i in range(300):
            tg.start_soon(one, i)
    assert results == {i: i + 1 for i in range(300)}


async def test_cancelled_reader_hands_over(tclient: Client) -> None:
    """A waiter that was reading is cancelled: the other waiters still get replies."""
    got: list[bytes] = []

    async def slow() -> None:
        got.append(await tclient.unary("/test.Svc/Sleep", b"0.3"))

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(0.05):
            await tclient.unary("/test.Svc/Sleep", b"5")
        tg.start_soon(slow)
        tg.start_soon(slow)
        await anyio.sleep(0.01)
        with anyio.move_on_after(0.05):
            await tclient.unary("/test.Svc/Sleep", b"5")
    assert got == [b"slept", b"slept"]


async def test_oversized_send_refused_connection_lives(sock_path: str) -> None:
    server = test_server(max_message_size=1000)
    async with (
        server.listen(sock_path) as bound,
        await Client.connect(bound, max_message_size=1000) as c,
    ):
        with pytest.raises(OversizedMessageError) as info:
            await c.unary("/test.Svc/Meta", b"x" * 2000)
        assert info.value.code == StatusCode.RESOURCE_EXHAUSTED
        # server refuses to send an oversized reply: RESOURCE_EXHAUSTED on that call only
        with pytest.raises(RemoteError) as rinfo:
            await c.unary("/test.Svc/Big", b"5000")
        assert rinfo.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert "exceed maximum message size of 1000" in rinfo.value.message
        assert await c.unary("/test.Svc/Big", b"10") == b"b" * 10


async def test_oversized_receive_fails_only_that_call(sock_path: str) -> None:
    server = test_server()
    async with (
        server.listen(sock_path) as bound,
        await Client.connect(bound, max_message_size=1000) as c,
    ):
        async with anyio.create_task_group() as tg:
            ok: list[bytes] = []

            async def small() -> None:
                ok.append(await c.unary("/test.Svc/Big", b"10"))

            for _ in range(5):
                tg.start_soon(small)
            with pytest.raises(OversizedMessageError):
                await c.unary("/test.Svc/Big", b"200000")
        assert ok == [b"b" * 10] * 5
        assert await c.unary("/test.Svc/Big", b"990") == b"b" * 990


async def test_server_receives_oversized_request(sock_path: str) -> None:
    server = test_server(max_message_size=1000)
    async with server.listen(sock_path) as bound, await Client.connect(bound) as c:
        with pytest.raises(RemoteError) as info:
            await c.unary("/test.Svc/Meta", b"x" * 5000)
        assert info.value.code == StatusCode.RESOURCE_EXHAUSTED
        size = len(encode_request("test.Svc", "Meta", b"x" * 5000))
        assert info.value.message == f"message length {size} exceed maximum message size of 1000"
        assert await c.unary("/test.Svc/Big", b"3") == b"bbb"


async def test_tcp_socket_fd_and_stream(anyio_backend: str) -> None:
    server = test_server()
    async with server.listen("tcp:127.0.0.1:0") as bound:
        assert bound.network == "tcp" and not bound.address.endswith(":0")
        async with await Client.connect(bound) as c:
            assert await c.unary("/test.Svc/Big", b"2") == b"bb"
    a, b = socket.socketpair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve_socket, a.detach())
        async with await Client.from_socket(b.detach()) as c:
            assert await c.unary("/test.Svc/Big", b"1") == b"b"
        c2, d = socket.socketpair()
        stream_c = await anyio.abc.UNIXSocketStream.from_socket(c2)
        stream_d = await anyio.abc.UNIXSocketStream.from_socket(d)
        tg.start_soon(server.serve_stream, stream_d)
        async with Client.from_stream(stream_c) as c:
            stub = ServiceClient(c, SERVICE)
            assert (await stub.Echo(pb.EchoPayload(seq=1))).seq == 2


async def test_connection_failure_fails_all_pending(anyio_backend: str) -> None:
    a, b = socket.socketpair()
    peer = await anyio.abc.UNIXSocketStream.from_socket(a)
    async with await Client.from_socket(b) as c:
        errors: list[BaseException] = []

        async def call() -> None:
            try:
                await c.unary("/x.Y/Z", b"")
            except ConnectionClosedError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)
            dec = FrameDecoder()
            seen = 0
            while seen < 5:
                seen += len(dec.feed(await peer.receive()))
            # answer half a frame, then hang up
            await peer.send(encode_frame(1, 2, 0, b"\x0a\x00")[:-1])
            await peer.aclose()
        assert len(errors) == 5
        assert any("middle of a frame" in str(e) for e in errors)
        with pytest.raises(ConnectionClosedError):
            await c.unary("/x.Y/Z", b"")


async def test_connect_failures_are_clear(sock_path: str) -> None:
    with pytest.raises(ConnectionClosedError) as info:
        await Client.connect(f"unix:{sock_path}")
    assert info.value.step == "connect" and sock_path in str(info.value)
    with pytest.raises(ConnectionClosedError):
        await Client.connect("tcp:127.0.0.1:1")
    with pytest.raises(ConfigError):
        await Client.connect("inproc:x")


async def test_use_after_close(tclient: Client) -> None:
    stream = await tclient.open_stream(
        SERVICE.full_name, "EchoStream", client_streaming=True, server_streaming=True
    )
    await tclient.aclose()
    assert tclient.closed
    with pytest.raises(ClosedError):
        await tclient.unary("/test.Svc/Big", b"1")
    with pytest.raises(ClosedError):
        await stream.send(b"")
    with pytest.raises(ConnectionClosedError):
        await stream.recv()
    await tclient.aclose()  # idempotent


async def test_transport_entry_point(sock_path: str) -> None:
    transport = load_transport("ttrpc")

    async def handler(payload: bytes, md: object) -> bytes:
        return payload[::-1]

    async with transport.serve(Address("unix", sock_path), {"/a.B/C": handler}) as bound:
        channel = await transport.connect(bound)
        async with channel:
            assert await channel.unary("/a.B/C", b"abc", timeout=5) == b"cba"


async def test_connection_failure_fails_streams(anyio_backend: str) -> None:
    a, b = socket.socketpair()
    peer = await anyio.abc.UNIXSocketStream.from_socket(a)
    async with await Client.from_socket(b) as c:
        stream = await c.open_stream("x.Y", "Z", b"", client_streaming=True, server_streaming=True)
        await stream.send(b"one")
        dec = FrameDecoder()
        seen = 0
        while seen < 2:
            seen += len(dec.feed(await peer.receive()))
        await peer.send(encode_frame(1, 3, 0, b"reply"))
        assert await stream.recv() == b"reply"
        await peer.aclose()
        with pytest.raises(ConnectionClosedError):
            await stream.recv()
        with pytest.raises(ConnectionClosedError):
            await stream.send(b"two")


async def test_stream_deadline_and_status(tclient: Client) -> None:
    stub = ServiceClient(tclient, SERVICE)
    async with await stub.EchoStream(timeout=0.3) as stream:
        await stream.send(pb.EchoPayload(seq=1))
        got = await stream.recv()
        assert got is not None and got.seq == 2
        with anyio.fail_after(3), pytest.raises(DeadlineExceededError):
            await stream.recv()  # the server waits for more input; the deadline passes
    assert stream.raw.stream_id not in tclient._calls


async def test_listen_grace_lets_calls_finish(sock_path: str) -> None:
    server = test_server()
    results: list[object] = []
    async with anyio.create_task_group() as tg:
        async with server.listen(sock_path, grace=5) as bound:
            busy = await Client.connect(bound)
            idle = await Client.connect(bound)
            assert await idle.unary("/test.Svc/Big", b"1") == b"b"

            async def slow() -> None:
                results.append(await busy.unary("/test.Svc/Sleep", b"0.3"))

            tg.start_soon(slow)
            await anyio.sleep(0.05)
        # leaving the block waited for the call in flight, and closed the idle connection
        assert results == [b"slept"]
        with pytest.raises(ConnectionClosedError):
            await idle.unary("/test.Svc/Big", b"1")
        await busy.aclose()
        await idle.aclose()


async def test_listen_without_grace_cancels_calls(sock_path: str) -> None:
    server = test_server()
    errors: list[BaseException] = []
    failed = anyio.Event()
    async with anyio.create_task_group() as tg:
        async with server.listen(sock_path) as bound:
            client = await Client.connect(bound)

            async def slow() -> None:
                try:
                    await client.unary("/test.Svc/Sleep", b"5")
                except ConnectionClosedError as exc:
                    errors.append(exc)
                    failed.set()

            tg.start_soon(slow)
            await anyio.sleep(0.05)
        with anyio.fail_after(3):
            await failed.wait()
    assert len(errors) == 1
    await client.aclose()


class _WrongTypes:
    async def Echo(self, request: pb.EchoPayload, context: ServerContext) -> pb.Sum:
        return pb.Sum()  # not an EchoPayload

    async def DivideStream(self, request: pb.Sum, context: ServerContext) -> AsyncIterator[object]:
        yield pb.Part(add=1)
        yield "not a message"


async def test_replies_of_the_wrong_type_answer_internal(sock_path: str) -> None:
    server = Server()
    server.add_servicer(_WrongTypes(), SERVICE)
    async with server.listen(sock_path) as bound, await Client.connect(bound) as client:
        stub = ServiceClient(client, SERVICE)
        with pytest.raises(RemoteError) as info:
            await stub.Echo(pb.EchoPayload())
        assert info.value.code == StatusCode.INTERNAL
        assert "error marshaling payload" in info.value.message
        parts = await stub.DivideStream(pb.Sum())
        assert (await parts.recv()) == pb.Part(add=1)
        with pytest.raises(RemoteError) as info:
            await parts.recv()
        assert info.value.code == StatusCode.INTERNAL
        with pytest.raises(RemoteError) as info:
            await stub.SumStream([])
        assert info.value.code == StatusCode.UNIMPLEMENTED


async def test_unread_stream_overflows_alone(
    tclient: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stream nobody reads while another call reads the connection is failed
    once its buffer is full; the connection and other calls are unaffected."""
    monkeypatch.setattr(client_module, "_STREAM_BUFFER", 100)
    stub = ServiceClient(tclient, SERVICE)
    parts = await stub.DivideStream(pb.Sum(sum=1, num=1000))
    # this call reads the connection for 0.5 s, buffering the parts for the stream
    assert await tclient.unary("/test.Svc/Sleep", b"0.5") == b"slept"
    got = 0
    with pytest.raises(ProtocolError, match="stream buffer full"):
        while await parts.recv() is not None:
            got += 1
    assert got == 101
    assert (await stub.Echo(pb.EchoPayload(seq=1))).seq == 2


async def test_handshake_on_peer_credentials(sock_path: str) -> None:
    server = test_server(handshake=require_same_user())
    async with server.listen(sock_path) as bound, await Client.connect(bound) as client:
        assert await client.unary("/test.Svc/Big", b"2") == b"bb"
    other = test_server(handshake=require_uid_gid(uid=os.geteuid() + 1))
    async with other.listen(sock_path) as bound, await Client.connect(bound) as client:
        with pytest.raises(ConnectionClosedError):
            await client.unary("/test.Svc/Big", b"2")
    tcp = test_server(handshake=require_same_user())
    async with tcp.listen("tcp:127.0.0.1:0") as bound, await Client.connect(bound) as client:
        with pytest.raises(ConnectionClosedError):
            await client.unary("/test.Svc/Big", b"2")


def test_peer_credentials_of_a_socketpair() -> None:
    a, b = socket.socketpair()
    with a, b:
        cred = peer_credentials(a)
        assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.geteuid(), os.getegid())
    with socket.socket(socket.AF_INET) as s, pytest.raises(CredentialsError):
        peer_credentials(s)


async def test_stream_ids_exhausted(tclient: Client) -> None:
    tclient._next_id = 0xFFFFFFFF
    assert await tclient.unary("/test.Svc/Big", b"1") == b"b"  # the last odd u32
    with pytest.raises(ProtocolError, match="exhausted"):
        await tclient.unary("/test.Svc/Big", b"1")


async def test_serve_forms(tmp_path: Path) -> None:
    server = test_server()
    async with anyio.create_task_group() as tg:
        bound = await tg.start(server.serve, f"unix:{tmp_path / 'a.sock'}")
        async with await Client.connect(bound) as c:
            assert await c.unary("/test.Svc/Big", b"1") == b"b"
        listener = await anyio.create_unix_listener(tmp_path / "b.sock")
        tg.start_soon(server.serve_listener, listener)
        async with await Client.connect(str(tmp_path / "b.sock")) as c:
            assert await c.unary("/test.Svc/Big", b"2") == b"bb"
        tg.cancel_scope.cancel()


async def test_api_misuse_is_typed(tclient: Client) -> None:
    stub = ServiceClient(tclient, SERVICE)
    with pytest.raises(AttributeError, match="no method Nope"):
        stub.Nope  # noqa: B018
    with pytest.raises(ConfigError):
        await stub.EchoStream(pb.EchoPayload())
    with pytest.raises(ConfigError):
        await tclient.unary("no-slash", b"")
    divide = await tclient.open_stream(
        SERVICE.full_name,
        "DivideStream",
        pb.Sum(sum=3, num=3).SerializeToString(),
        client_streaming=False,
        server_streaming=True,
    )
    with pytest.raises(ProtocolError, match="non-streaming client"):
        await divide.send(b"")
    await divide.close_send()  # nothing to close: a no-op
    assert len([m async for m in divide]) == 3
    echo = await tclient.open_stream(
        SERVICE.full_name, "EchoStream", client_streaming=True, server_streaming=True
    )
    await echo.close_send()
    await echo.close_send()  # idempotent
    with pytest.raises(ClosedError):
        await echo.send(b"")
    assert await echo.recv() is None
    assert await echo.recv() is None


def test_metadata_forms() -> None:
    assert normalize_metadata(None) == []
    assert normalize_metadata({"a": "1", "b": ["2", "3"]}) == [("a", "1"), ("b", "2"), ("b", "3")]
    assert normalize_metadata([("a", "1"), ("a", "2")]) == [("a", "1"), ("a", "2")]


async def test_flow_control_with_large_streams(tclient: Client) -> None:
    """Two bidirectional streams push 16 MiB each before reading anything: writers
    wait for the peer (write pause/drain, read pause/resume, queued batches) and
    every message arrives intact and in order."""
    stub = ServiceClient(tclient, SERVICE)
    blob = "x" * (128 << 10)

    async def one(tag: int) -> None:
        async with await stub.EchoStream(timeout=60) as stream:

            async def send_all() -> None:
                for i in range(128):
                    await stream.send(pb.EchoPayload(seq=i, msg=f"{tag}{blob}"))
                await stream.close_send()

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_all)
                await anyio.sleep(0.3)  # let the buffers fill up before reading
                seqs = []
                async for reply in stream:
                    assert reply.msg[0] == str(tag) and len(reply.msg) == len(blob) + 1
                    seqs.append(reply.seq)
            assert seqs == list(range(1, 129))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1)
            tg.start_soon(one, 2)


async def test_public_socket_helpers(tmp_path: Path, anyio_backend: str) -> None:
    from plugwire.ttrpc import sockets

    listening, bound = sockets.bind(Address("unix", str(tmp_path / "s.sock")))
    with listening:
        async with anyio.create_task_group() as tg:

            async def serve_one() -> None:
                stream = await sockets.socket_stream(await sockets.accept(listening))
                await stream.send(await stream.receive())
                await stream.aclose()

            tg.start_soon(serve_one)
            client = await sockets.connect(bound)
            if anyio_backend == "asyncio":
                assert isinstance(client, sockets.AsyncioSocketStream)
                assert client.try_send(b"ping", cork=False)
            else:
                await client.send(b"ping")
            assert await client.receive() == b"ping"
            await client.aclose()
