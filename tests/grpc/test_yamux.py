"""plugwire.grpc.yamux on its own: framing, flow control, stream life cycle, session
control and failure handling, on asyncio and trio.

Sessions run over real connected sockets (``socket.socketpair``). Misbehaving peers are
played by a raw socket that writes hand-made frames.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    PlugwireError,
    ProtocolError,
)
from plugwire.grpc import yamux
from plugwire.grpc.yamux import (
    Flag,
    FrameHeader,
    FrameType,
    GoAwayCode,
    RemoteGoAwayError,
    SessionClosedError,
    StreamClosedError,
    StreamResetError,
    YamuxConfig,
    YamuxTimeoutError,
)

pytestmark = pytest.mark.anyio

WINDOW = yamux.INITIAL_STREAM_WINDOW
QUIET = YamuxConfig(enable_keepalive=False)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def socket_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (
        await anyio.abc.SocketStream.from_socket(a),
        await anyio.abc.SocketStream.from_socket(b),
    )


@asynccontextmanager
async def session_pair(
    client_config: YamuxConfig = QUIET, server_config: YamuxConfig = QUIET
) -> AsyncIterator[tuple[yamux.Session, yamux.Session]]:
    a, b = await socket_pair()
    async with (
        yamux.client(a, client_config, name="server-peer") as client,
        yamux.server(b, server_config, name="client-peer") as server,
    ):
        yield client, server


@asynccontextmanager
async def raw_peer(
    *, client: bool, config: YamuxConfig = QUIET
) -> AsyncIterator[tuple[yamux.Session, anyio.abc.SocketStream, BufferedByteReceiveStream]]:
    """A session whose peer is a raw socket the test writes frames to."""
    a, b = await socket_pair()
    async with yamux.Session(a, client=client, config=config, name="raw") as session:
        yield session, b, BufferedByteReceiveStream(b)


def frame(type_: FrameType, flags: int, stream_id: int, length: int, payload: bytes = b"") -> bytes:
    return yamux.encode_header(type_, flags, stream_id, length) + payload


async def read_frame(rx: BufferedByteReceiveStream) -> tuple[FrameHeader, bytes]:
    header = yamux.decode_header(await rx.receive_exactly(yamux.HEADER_SIZE))
    payload = b""
    if header.type is FrameType.DATA and header.length:
        payload = await rx.receive_exactly(header.length)
    return header, payload


async def read_until(rx: BufferedByteReceiveStream, type_: FrameType) -> tuple[FrameHeader, bytes]:
    with anyio.fail_after(5):
        while True:
            header, payload = await read_frame(rx)
            if header.type is type_:
                return header, payload


async def read_all(stream: anyio.abc.ByteReceiveStream) -> bytes:
    out = bytearray()
    async for chunk in stream:
        out += chunk
    return bytes(out)


def pattern(seed: int, size: int) -> bytes:
    block = bytes(range(251))
    return (block * (size // 251 + 2))[seed % 251 : seed % 251 + size]


async def echo_server(session: yamux.Session) -> None:
    async with anyio.create_task_group() as tg:
        async for stream in session:

            async def echo(stream: yamux.YamuxStream) -> None:
                async with stream:
                    async for chunk in stream:
                        await stream.send(chunk)
                    await stream.send_eof()

            tg.start_soon(echo, stream)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 (polls plain state)
            await anyio.sleep(0.01)


async def roundtrip(stream: yamux.YamuxStream, data: bytes) -> bytes:
    async with anyio.create_task_group() as tg:

        async def write() -> None:
            await stream.send(data)
            await stream.send_eof()

        tg.start_soon(write)
        received = await read_all(stream)
    return received


# -- framing -------------------------------------------------------------------


def test_header_round_trip_and_layout() -> None:
    raw = yamux.encode_header(FrameType.WINDOW_UPDATE, Flag.SYN | Flag.ACK, 7, 0x01020304)
    assert raw == bytes([0, 1, 0, 3, 0, 0, 0, 7, 1, 2, 3, 4])
    header = yamux.decode_header(raw)
    assert header == FrameHeader(FrameType.WINDOW_UPDATE, Flag.SYN | Flag.ACK, 7, 0x01020304)
    assert header.encode() == raw


@pytest.mark.parametrize(
    ("raw", "expected", "seen"),
    [
        (b"\x00\x01", "12 header bytes", "2 bytes"),
        (b"\x01" + bytes(11), "version 0", "version 1"),
        (b"\x00\x07" + bytes(10), "type 0 (data)", "type 7"),
    ],
)
def test_bad_headers_are_typed_protocol_errors(raw: bytes, expected: str, seen: str) -> None:
    with pytest.raises(ProtocolError) as info:
        yamux.decode_header(raw, peer="p")
    assert expected in str(info.value.expected)
    assert seen in str(info.value.seen)
    assert info.value.peer == "p"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accept_backlog": 0},
        {"keepalive_interval": 0},
        {"connection_write_timeout": -1},
        {"max_stream_window_size": 1024},
        {"stream_open_timeout": -1},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        YamuxConfig(**kwargs)  # type: ignore[arg-type]


def test_default_config_matches_hashicorp_default() -> None:
    config = YamuxConfig()
    assert (config.accept_backlog, config.enable_keepalive, config.keepalive_interval) == (
        256,
        True,
        30.0,
    )
    assert config.connection_write_timeout == 10.0
    assert config.max_stream_window_size == 256 * 1024
    assert (config.stream_open_timeout, config.stream_close_timeout) == (75.0, 300.0)


# -- streams ---------------------------------------------------------------------


async def test_open_accept_echo_and_stream_ids() -> None:
    async with session_pair() as (client, server), anyio.create_task_group() as tg:
        tg.start_soon(echo_server, server)
        streams = [await client.open_stream() for _ in range(3)]
        assert [s.stream_id for s in streams] == [1, 3, 5]
        assert isinstance(streams[0], anyio.abc.ByteStream)
        for i, stream in enumerate(streams):
            assert await roundtrip(stream, b"hello %d" % i) == b"hello %d" % i
        # The server opens even ids.
        async with anyio.create_task_group() as tg2:
            tg2.start_soon(echo_server, client)
            back = await server.open_stream()
            assert back.stream_id == 2
            assert await roundtrip(back, b"from server") == b"from server"
            tg2.cancel_scope.cancel()
        tg.cancel_scope.cancel()


async def test_large_transfers_beyond_the_window_both_ways_on_many_streams() -> None:
    size = 3 * WINDOW + 12345
    async with session_pair() as (client, server), anyio.create_task_group() as tg:
        tg.start_soon(echo_server, server)
        results: dict[int, bool] = {}

        async def one(i: int) -> None:
            stream = await client.open_stream()
            data = pattern(i, size)
            results[i] = await roundtrip(stream, data) == data

        async with anyio.create_task_group() as inner:
            for i in range(8):
                inner.start_soon(one, i)
        assert results == dict.fromkeys(range(8), True)
        await eventually(lambda: client.num_streams == 0 and server.num_streams == 0)
        tg.cancel_scope.cancel()


async def test_many_concurrent_small_streams() -> None:
    async with session_pair() as (client, server), anyio.create_task_group() as tg:
        tg.start_soon(echo_server, server)
        ok: list[int] = []

        async def one(i: int) -> None:
            stream = await client.open_stream()
            if await roundtrip(stream, b"n=%d" % i) == b"n=%d" % i:
                ok.append(i)

        async with anyio.create_task_group() as inner:
            for i in range(300):  # more than the 256 accept backlog
                inner.start_soon(one, i)
        assert sorted(ok) == list(range(300))
        tg.cancel_scope.cancel()


async def test_flow_control_blocks_the_sender_until_the_reader_reads() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"x" * WINDOW)  # exactly the initial window: does not block
        peer = await server.accept_stream()
        assert stream.send_window == 0
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await stream.send(b"y")
        # Reading half the window makes the receiver grant it back.
        got = b""
        while len(got) < WINDOW // 2:
            got += await peer.receive(WINDOW // 2 - len(got))
        with anyio.fail_after(5):
            await stream.send(b"z" * 1000)
        assert stream.send_window == WINDOW // 2 - 1000


async def test_larger_window_is_advertised_in_syn_and_ack() -> None:
    big = YamuxConfig(enable_keepalive=False, max_stream_window_size=4 * WINDOW)
    async with session_pair(client_config=big, server_config=big) as (client, server):
        stream = await client.open_stream()
        peer = await server.accept_stream()
        await eventually(lambda: stream.send_window == 4 * WINDOW)
        assert peer.send_window == 4 * WINDOW
        # 4 windows' worth goes through without the reader reading.
        with anyio.fail_after(5):
            await stream.send(b"q" * 4 * WINDOW)
        await eventually(lambda: peer.receive_window == 0)


async def test_half_close_keeps_the_other_direction_open() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"request")
        await stream.send_eof()
        with pytest.raises(StreamClosedError):
            await stream.send(b"more")
        peer = await server.accept_stream()
        assert await read_all(peer) == b"request"
        await peer.send(b"response, part 1; ")
        await peer.send(b"part 2")
        await peer.send_eof()
        assert await read_all(stream) == b"response, part 1; part 2"
        await eventually(lambda: client.num_streams == 0 and server.num_streams == 0)
        assert stream.state is yamux.StreamState.CLOSED


async def test_reset_fails_both_sides_with_typed_errors() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"abc")
        peer = await server.accept_stream()
        assert await peer.receive() == b"abc"

        async def blocked_read() -> None:
            with pytest.raises(StreamResetError) as info:
                await peer.receive()
            assert info.value.by_peer
            assert isinstance(info.value, anyio.BrokenResourceError)
            assert isinstance(info.value, PlugwireError)

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_read)
            await anyio.sleep(0.05)
            stream.reset()
        with pytest.raises(StreamResetError) as local:
            await stream.send(b"x")
        assert not local.value.by_peer
        with pytest.raises(StreamResetError):
            await peer.send(b"x")
        assert client.num_streams == 0 and server.num_streams == 0


async def test_aclose_discards_late_data_without_stalling_the_peer() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"hi")
        peer = await server.accept_stream()
        await stream.aclose()
        with pytest.raises(StreamClosedError):
            await stream.receive()
        assert isinstance(StreamClosedError("x"), anyio.ClosedResourceError)
        assert await read_all(peer) == b"hi"  # our FIN arrived
        with anyio.fail_after(5):
            await peer.send(b"z" * 4 * WINDOW)  # credited back although nobody reads
        await peer.send_eof()
        await eventually(lambda: client.num_streams == 0 and server.num_streams == 0)


async def test_cancelled_receive_loses_no_data() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"x")
        peer = await server.accept_stream()
        assert await peer.receive() == b"x"
        with anyio.move_on_after(0.1) as scope:
            await peer.receive()
        assert scope.cancelled_caught
        await stream.send(b"after the deadline")
        with anyio.fail_after(5):
            assert await peer.receive() == b"after the deadline"


async def test_streams_work_with_anyio_stream_wrappers() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"line one\nline two\n" + struct.pack(">I", 42))
        peer = await server.accept_stream()
        buffered = BufferedByteReceiveStream(peer)
        assert await buffered.receive_until(b"\n", 100) == b"line one"
        assert await buffered.receive_until(b"\n", 100) == b"line two"
        assert struct.unpack(">I", await buffered.receive_exactly(4)) == (42,)


def self_signed(tmp: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{tmp}/cert.pem", f"{tmp}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


async def test_tls_runs_inside_a_stream(tmp_path: Path) -> None:
    # As go-plugin does with AutoMTLS: TLS end to end inside each yamux stream.
    cert, key = self_signed(str(tmp_path))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    async with session_pair() as (client, server):
        opened = await client.open_stream()
        results: list[bytes] = []

        async def serve() -> None:
            accepted = await server.accept_stream()
            tls = await TLSStream.wrap(accepted, server_side=True, ssl_context=server_ctx)
            request = await tls.receive()
            await tls.send(request.upper() + b" " + pattern(1, 300_000))
            await tls.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            tls = await TLSStream.wrap(opened, hostname="localhost", ssl_context=client_ctx)
            await tls.send(b"hello over tls")
            received = bytearray()
            async for chunk in tls:
                received += chunk
            results.append(bytes(received))
            await tls.aclose()
        assert results == [b"HELLO OVER TLS " + pattern(1, 300_000)]


async def test_close_timeout_resets_a_half_closed_stream() -> None:
    config = YamuxConfig(enable_keepalive=False, stream_close_timeout=0.2)
    async with session_pair(client_config=config) as (client, server):
        stream = await client.open_stream()
        await stream.send_eof()
        peer = await server.accept_stream()
        assert await read_all(peer) == b""
        with anyio.fail_after(5):
            await stream.wait_closed()
        assert stream.state is yamux.StreamState.RESET
        await eventually(lambda: peer.state is yamux.StreamState.RESET)
        with pytest.raises(StreamResetError):
            await peer.send(b"too late")


# -- session control -------------------------------------------------------------


async def test_ping_measures_round_trip_time_both_ways() -> None:
    async with session_pair() as (client, server):
        rtt = await client.ping()
        assert 0 < rtt < 5
        assert 0 < await server.ping() < 5


async def test_keepalive_pings_keep_a_live_session_open() -> None:
    config = YamuxConfig(keepalive_interval=0.02, connection_write_timeout=1)
    async with session_pair(client_config=config, server_config=config) as (client, server):
        await anyio.sleep(0.3)
        assert not client.closed and not server.closed


async def test_goaway_refuses_new_streams_but_keeps_old_ones() -> None:
    async with session_pair() as (client, server), anyio.create_task_group() as tg:
        tg.start_soon(echo_server, server)
        old = await client.open_stream()
        await old.send(b"before")
        assert await old.receive() == b"before"  # accepted and echoed
        await server.go_away()
        assert server.local_go_away
        await eventually(lambda: client.remote_go_away)
        with pytest.raises(RemoteGoAwayError) as info:
            await client.open_stream()
        assert info.value.code == GoAwayCode.NORMAL
        await old.send(b"after")
        await old.send_eof()
        assert await read_all(old) == b"after"
        assert not client.closed
        tg.cancel_scope.cancel()


async def test_syn_after_local_goaway_is_reset() -> None:
    async with raw_peer(client=False) as (session, raw, rx):
        await session.go_away()
        header, _ = await read_until(rx, FrameType.GO_AWAY)
        assert header.length == GoAwayCode.NORMAL
        await raw.send(frame(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0))
        header, _ = await read_until(rx, FrameType.WINDOW_UPDATE)
        assert (header.stream_id, header.flags) == (1, Flag.RST)


async def test_accept_backlog_overflow_resets_extra_streams() -> None:
    small = YamuxConfig(enable_keepalive=False, accept_backlog=2)
    async with session_pair(server_config=small) as (client, server):
        streams = [await client.open_stream() for _ in range(2)]
        extra = [await client.open_stream() for _ in range(2)]  # client backlog is 256
        for stream in extra:
            with anyio.fail_after(5), pytest.raises(StreamResetError):
                await stream.receive()
        assert server.num_streams == 2
        accepted = [await server.accept_stream() for _ in streams]
        assert [s.stream_id for s in accepted] == [1, 3]


async def test_open_waits_while_too_many_opens_are_unacknowledged() -> None:
    small = YamuxConfig(enable_keepalive=False, accept_backlog=2)
    async with session_pair(client_config=small) as (client, server):
        await client.open_stream()
        await client.open_stream()
        with pytest.raises(TimeoutError), anyio.fail_after(0.2):
            await client.open_stream()
        await server.accept_stream()  # sends the ACK: one slot frees up
        with anyio.fail_after(5):
            third = await client.open_stream()
        assert third.stream_id == 5


async def test_aclose_fails_every_stream_and_the_peer_sees_it() -> None:
    async with session_pair() as (client, server):
        stream = await client.open_stream()
        await stream.send(b"pending")
        peer = await server.accept_stream()

        async def reader() -> None:
            with pytest.raises(SessionClosedError) as info:
                await stream.receive()
            assert info.value.cause is None

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.05)
            await client.aclose()
        with pytest.raises(SessionClosedError):
            await client.open_stream()
        with pytest.raises(SessionClosedError):
            await stream.send(b"x")
        # The server saw GoAway NORMAL then EOF: its streams fail, buffered bytes stay readable.
        await eventually(lambda: server.closed)
        assert server.remote_go_away
        assert isinstance(server.error, ConnectionClosedError)
        assert await peer.receive() == b"pending"
        with pytest.raises(SessionClosedError):
            await peer.receive()
        with pytest.raises(SessionClosedError):
            await server.accept_stream()
        assert [s async for s in server] == []


async def test_session_must_be_entered() -> None:
    a, b = await socket_pair()
    session = yamux.client(a)
    with pytest.raises(ClosedError):
        await session.open_stream()
    await session.aclose()
    await b.aclose()


# -- bad peers -----------------------------------------------------------------


async def test_garbage_bytes_end_the_session_with_a_protocol_error() -> None:
    async with raw_peer(client=False) as (session, raw, rx):

        async def accept() -> None:
            with pytest.raises(SessionClosedError) as info:
                await session.accept_stream()
            assert isinstance(info.value.cause, ProtocolError)

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            header, _ = await read_until(rx, FrameType.GO_AWAY)
        assert header.length == GoAwayCode.PROTOCOL_ERROR
        error = session.error
        assert isinstance(error, ProtocolError)
        assert error.expected == "version 0"
        assert "version 71" in str(error.seen)  # 'G'


async def test_unknown_frame_type_is_a_protocol_error() -> None:
    async with raw_peer(client=True) as (session, raw, _rx):
        await raw.send(bytes([0, 9, 0, 0]) + bytes(8))
        await session.wait_closed()
        assert isinstance(session.error, ProtocolError)
        assert "type 9" in str(session.error.seen)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([frame(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0)], "wrong parity"),
        ([frame(FrameType.WINDOW_UPDATE, Flag.SYN, 0, 0)], "wrong parity"),
        ([frame(FrameType.WINDOW_UPDATE, Flag.SYN, 2, 0)] * 2, "duplicate"),
        (
            [
                frame(FrameType.WINDOW_UPDATE, Flag.SYN, 2, 0),
                frame(FrameType.WINDOW_UPDATE, Flag.FIN, 2, 0),
                frame(FrameType.WINDOW_UPDATE, Flag.FIN, 2, 0),
            ],
            "unexpected FIN",
        ),
        (
            [
                frame(FrameType.DATA, Flag.SYN, 2, 200_000, bytes(200_000)),
                frame(FrameType.DATA, 0, 2, 100_000, bytes(100_000)),
            ],
            "receive window exceeded",
        ),
        ([frame(FrameType.DATA, Flag.SYN, 2, 2**31)], "larger than any window"),
    ],
)
async def test_protocol_violations_name_expected_and_seen(
    frames: list[bytes], message: str
) -> None:
    # The session is the client: the peer (server) must open even ids.
    async with raw_peer(client=True) as (session, raw, rx):
        await raw.send(b"".join(frames))
        header, _ = await read_until(rx, FrameType.GO_AWAY)
        assert header.length == GoAwayCode.PROTOCOL_ERROR
        await session.wait_closed()
        error = session.error
        assert isinstance(error, ProtocolError), error
        assert message in error.message
        assert error.expected and error.seen


def random_frames(rng: random.Random) -> bytes:
    """Plausible frames with random types, flags, ids and lengths, sometimes garbage."""
    out = bytearray()
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.05:
            out += rng.randbytes(rng.randint(1, 20))
            continue
        type_ = rng.choice([0, 0, 1, 1, 2, 3, rng.randint(0, 255)])
        flags = rng.randint(0, 15)
        stream_id = rng.choice([0, 1, 2, 3, 4, 5, rng.randint(0, 2**32 - 1)])
        if type_ == 0:
            length = rng.choice([0, 1, 100, rng.randint(0, 300_000)])
            out += frame(FrameType.DATA, flags, stream_id, length, rng.randbytes(length))
        else:
            length = rng.choice([0, 1, 2**31, rng.randint(0, 2**32 - 1)])
            out += bytes([0, type_]) + struct.pack(">HII", flags, stream_id, length)
    return bytes(out)


async def test_random_frames_never_break_the_session_with_untyped_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    typed = (ProtocolError, ConnectionClosedError, YamuxTimeoutError)
    outcomes = set()
    for seed in range(200):
        rng = random.Random(seed)
        async with raw_peer(client=rng.random() < 0.5) as (session, raw, _rx):
            with contextlib.suppress(anyio.BrokenResourceError):
                await raw.send(random_frames(rng))
            await raw.send_eof()
            with anyio.fail_after(5):
                await session.wait_closed()
            assert isinstance(session.error, typed), (seed, session.error)
            outcomes.add(type(session.error).__name__)
    assert "ProtocolError" in outcomes  # the mix does reach the checks
    assert not [r for r in caplog.records if r.exc_info], "a yamux task crashed"


async def test_two_clients_on_one_connection_are_told_apart() -> None:
    a, b = await socket_pair()
    async with yamux.client(a, QUIET) as one, yamux.client(b, QUIET) as two:
        stream = await one.open_stream()
        await stream.send(b"x")
        await two.wait_closed()
        assert isinstance(two.error, ProtocolError)
        assert "both ends clients" in two.error.message


async def test_peer_dying_mid_frame_fails_streams_with_session_closed() -> None:
    async with raw_peer(client=False) as (session, raw, _rx):
        await raw.send(frame(FrameType.DATA, Flag.SYN, 1, 5, b"hello"))
        stream = await session.accept_stream()
        assert await stream.receive() == b"hello"
        await raw.send(frame(FrameType.DATA, 0, 1, 100)[:-2])  # header cut short
        await raw.send_eof()
        with anyio.fail_after(5), pytest.raises(SessionClosedError) as info:
            await stream.receive()
        assert isinstance(info.value.cause, ConnectionClosedError)
        assert "middle of a frame" in str(info.value)
        with pytest.raises(SessionClosedError):
            await session.open_stream()


async def test_stream_the_peer_finished_still_ends_cleanly_when_the_session_dies() -> None:
    async with raw_peer(client=False) as (session, raw, _rx):
        await raw.send(frame(FrameType.DATA, Flag.SYN | Flag.FIN, 1, 4, b"done"))
        stream = await session.accept_stream()
        await raw.aclose()
        await session.wait_closed()
        assert await read_all(stream) == b"done"


async def test_ping_without_answer_times_out() -> None:
    config = YamuxConfig(enable_keepalive=False, connection_write_timeout=0.2)
    async with raw_peer(client=True, config=config) as (session, _raw, rx):
        with pytest.raises(YamuxTimeoutError):
            await session.ping()
        header, _ = await read_until(rx, FrameType.PING)
        assert header.flags == Flag.SYN
        assert not session.closed


async def test_peer_that_stops_reading_trips_the_write_timeout() -> None:
    config = YamuxConfig(enable_keepalive=False, connection_write_timeout=0.3)
    a, b = socket.socketpair()  # b stays a plain socket: nothing reads it
    try:
        async with yamux.server(await anyio.abc.SocketStream.from_socket(a), config) as session:
            # 16 streams' windows of 256 KiB are far more than the socket buffers hold.
            b.sendall(
                b"".join(frame(FrameType.WINDOW_UPDATE, Flag.SYN, i, 0) for i in range(1, 33, 2))
            )
            streams = [await session.accept_stream() for _ in range(16)]

            async def flood(stream: yamux.YamuxStream) -> None:
                with pytest.raises(SessionClosedError):
                    await stream.send(b"w" * WINDOW)
                    await stream.send(b"more")  # the window is spent: waits until the end

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for stream in streams:
                        tg.start_soon(flood, stream)
            assert isinstance(session.error, YamuxTimeoutError)
            assert "write" in str(session.error)
    finally:
        b.close()


async def test_ping_from_peer_is_answered_with_same_value() -> None:
    async with raw_peer(client=True) as (_session, raw, rx):
        await raw.send(frame(FrameType.PING, Flag.SYN, 0, 0xDEADBEEF))
        header, _ = await read_until(rx, FrameType.PING)
        assert (header.flags, header.length) == (Flag.ACK, 0xDEADBEEF)


async def test_keepalive_closes_a_session_whose_peer_stopped_answering() -> None:
    config = YamuxConfig(keepalive_interval=0.05, connection_write_timeout=0.2)
    async with raw_peer(client=True, config=config) as (session, _raw, _rx):
        with anyio.fail_after(5):
            await session.wait_closed()
        assert isinstance(session.error, YamuxTimeoutError)
        assert "keepalive" in str(session.error)


async def test_unacknowledged_open_times_out_and_closes_the_session() -> None:
    config = YamuxConfig(enable_keepalive=False, stream_open_timeout=0.2)
    async with raw_peer(client=True, config=config) as (session, _raw, rx):
        stream = await session.open_stream()
        header, _ = await read_frame(rx)
        assert (header.type, header.flags, header.stream_id) == (
            FrameType.WINDOW_UPDATE,
            Flag.SYN,
            1,
        )
        with anyio.fail_after(5):
            await session.wait_closed()
        assert isinstance(session.error, YamuxTimeoutError)
        with pytest.raises(SessionClosedError):
            await stream.send(b"x")


async def test_remote_error_goaway_ends_the_session() -> None:
    async with raw_peer(client=True) as (session, raw, _rx):
        await raw.send(frame(FrameType.GO_AWAY, 0, 0, GoAwayCode.INTERNAL_ERROR))
        await session.wait_closed()
        assert isinstance(session.error, RemoteGoAwayError)
        assert session.error.code == GoAwayCode.INTERNAL_ERROR
        assert "INTERNAL_ERROR" in str(session.error)


async def test_frames_for_unknown_streams_are_ignored() -> None:
    async with raw_peer(client=True) as (session, raw, rx):
        await raw.send(
            frame(FrameType.DATA, 0, 40, 3, b"old")
            + frame(FrameType.WINDOW_UPDATE, 0, 42, 10)
            + frame(FrameType.PING, Flag.SYN, 0, 1)
        )
        header, _ = await read_until(rx, FrameType.PING)
        assert header.length == 1
        assert not session.closed


async def test_wire_bytes_of_an_opened_stream() -> None:
    async with raw_peer(client=True) as (session, raw, rx):
        stream = await session.open_stream()
        await stream.send(b"payload")
        await stream.send_eof()
        frames = [await read_frame(rx) for _ in range(3)]
        assert [(h.type, h.flags, h.stream_id, h.length) for h, _ in frames] == [
            (FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0),
            (FrameType.DATA, Flag.NONE, 1, 7),
            (FrameType.WINDOW_UPDATE, Flag.FIN, 1, 0),
        ]
        assert frames[1][1] == b"payload"
        # ACK + FIN from the peer completes the close.
        await raw.send(frame(FrameType.WINDOW_UPDATE, Flag.ACK | Flag.FIN, 1, 0))
        with anyio.fail_after(5):
            await stream.wait_closed()
        assert session.num_streams == 0


async def test_accepted_stream_sends_ack_with_its_first_frame() -> None:
    async with raw_peer(client=False) as (session, raw, rx):
        await raw.send(frame(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0))
        stream = await session.accept_stream()
        header, _ = await read_frame(rx)
        assert (header.type, header.flags, header.stream_id) == (
            FrameType.WINDOW_UPDATE,
            Flag.ACK,
            1,
        )
        await stream.send(b"hi")
        header, payload = await read_frame(rx)
        assert (header.type, header.flags, payload) == (FrameType.DATA, Flag.NONE, b"hi")


def test_stream_module_does_not_import_session() -> None:
    # No import circle: the session hands the stream what it needs (a SessionLink).
    import ast
    import inspect

    from plugwire.grpc.yamux import Session, _stream

    tree = ast.parse(inspect.getsource(_stream))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not any(name.endswith("_session") for name in imported)
    assert "_session" not in vars(_stream)
    # ...and a Session is what a stream is given.
    link: _stream.SessionLink = Session.__new__(Session)
    assert isinstance(link, Session)
