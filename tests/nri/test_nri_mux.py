"""The NRI socket multiplexer, on asyncio and trio."""

from __future__ import annotations

import socket
import struct

import anyio
import anyio.abc
import pytest

from plugwire.core.errors import ProtocolError
from plugwire.ttrpc.nri import mux as mux_module
from plugwire.ttrpc.nri.mux import (
    MAX_FRAME_PAYLOAD,
    MAX_SEND_FRAME,
    READ_QUEUE_LENGTH,
    Multiplexer,
)

pytestmark = pytest.mark.anyio

HEADER = struct.Struct(">II")


async def pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (
        await anyio.abc.UNIXSocketStream.from_socket(a),
        await anyio.abc.UNIXSocketStream.from_socket(b),
    )


async def read_frames(stream: anyio.abc.ByteStream, total: int) -> list[tuple[int, bytes]]:
    """Parse raw mux frames until ``total`` payload bytes were seen."""
    buf = b""
    frames: list[tuple[int, bytes]] = []
    seen = 0
    while seen < total:
        buf += await stream.receive()
        while len(buf) >= 8:
            cid, size = HEADER.unpack(buf[:8])
            if len(buf) < 8 + size:
                break
            frames.append((cid, buf[8 : 8 + size]))
            seen += size
            buf = buf[8 + size :]
    return frames


async def test_large_writes_are_split_into_small_frames() -> None:
    a, b = await pair()
    payload = bytes(range(256)) * 100  # 25600 bytes
    async with Multiplexer(a) as mux:
        await mux.open(2).send(payload)
        frames = await read_frames(b, len(payload))
    assert all(cid == 2 for cid, _ in frames)
    assert max(len(data) for _, data in frames) <= MAX_SEND_FRAME
    assert len(frames) == -(-len(payload) // MAX_SEND_FRAME)
    assert b"".join(data for _, data in frames) == payload
    await b.aclose()


def ttrpc_message(size: int, fill: int = 0x61) -> bytes:
    """A ttrpc frame (10-byte header: length, stream id, type, flags) with ``size``
    payload bytes."""
    return struct.pack(">IIBB", size, 1, 1, 0) + bytes([fill]) * size


async def frames_of(*writes: bytes) -> list[bytes]:
    a, b = await pair()
    frames: list[tuple[int, bytes]] = []

    async def read() -> None:
        frames.extend(await read_frames(b, sum(map(len, writes))))

    async with Multiplexer(a) as mux, anyio.create_task_group() as tg:
        tg.start_soon(read)  # concurrently: big writes fill the socket buffer
        conn = mux.open(1)
        with anyio.fail_after(10):
            for data in writes:
                await conn.send(data)
    await b.aclose()
    assert {cid for cid, _ in frames} == {1}
    assert b"".join(data for _, data in frames) == b"".join(writes)
    return [data for _, data in frames]


async def test_large_ttrpc_message_goes_as_header_frame_and_payload_frame() -> None:
    """Upstream's reader queues 256 frames per conn at most: a 4 MiB message in
    4096-byte frames (1025) overflows it when its ttrpc reader lags; as a header
    frame and one payload frame, which the Go reader takes directly, it cannot."""
    big = ttrpc_message(4 << 20)
    frames = await frames_of(big)
    assert [len(f) for f in frames] == [10, 4 << 20]


async def test_small_ttrpc_messages_are_packed_whole() -> None:
    small = [ttrpc_message(n, fill=i) for i, n in enumerate([50, 3000, 2000, 1000, 4086, 0])]
    big = ttrpc_message(10000, fill=9)
    frames = await frames_of(b"".join(small[:4]) + big + b"".join(small[4:]))
    # [50 + 3000] fits one frame, [2000 + 1000] the next, then the big message's
    # header and payload, then the 4096-byte message, then the empty one (10 bytes)
    assert [len(f) for f in frames] == [60 + 3010, 2010 + 1010, 10, 10000, 4096, 10]
    assert frames[0] == small[0] + small[1] and frames[4:] == small[4:]


async def test_over_limit_message_and_unaligned_writes_use_small_frames() -> None:
    # above the ttrpc limit the Go reader discards through its 4096-byte buffer
    huge = ttrpc_message((4 << 20) + 1)
    frames = await frames_of(huge)
    assert max(map(len, frames)) == MAX_SEND_FRAME
    assert len(frames) == -(-len(huge) // MAX_SEND_FRAME)
    # after a write that is not whole messages, boundaries are unknown: small frames
    partial = ttrpc_message(100)[:50]
    rest = ttrpc_message(100)[50:] + ttrpc_message(9000)
    frames = await frames_of(partial, rest)
    assert max(map(len, frames)) <= MAX_SEND_FRAME


async def test_demultiplexes_conns_and_drops_unknown_ids() -> None:
    a, b = await pair()
    async with Multiplexer(a) as mux:
        one, two = mux.open(1), mux.open(2)
        await b.send(HEADER.pack(2, 3) + b"two" + HEADER.pack(9, 4) + b"lost" + HEADER.pack(1, 3))
        await b.send(b"one")
        with anyio.fail_after(5):
            assert await one.receive() == b"one"
            assert await two.receive() == b"two"
        # a frame can be consumed in pieces
        await b.send(HEADER.pack(1, 6) + b"abcdef")
        with anyio.fail_after(5):
            assert await one.receive(4) == b"abcd"
            assert await one.receive(4) == b"ef"
        await b.aclose()
        with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
            await one.receive()
    assert mux.error is None


async def test_oversized_frame_header_breaks_the_trunk() -> None:
    a, b = await pair()
    async with Multiplexer(a, peer="bad peer") as mux:
        conn = mux.open(1)
        await b.send(HEADER.pack(1, MAX_FRAME_PAYLOAD + 1))
        with anyio.fail_after(5), pytest.raises(anyio.BrokenResourceError):
            await conn.receive()
    assert isinstance(mux.error, ProtocolError)
    assert "maximum is" in str(mux.error) and "bad peer" in str(mux.error)
    # the trunk was closed: the peer sees EOF
    with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
        await b.receive()


async def test_full_queue_pauses_the_reader_until_drained() -> None:
    a, b = await pair()
    count = READ_QUEUE_LENGTH * 3
    async with Multiplexer(a) as mux:
        conn = mux.open(1)
        await b.send(b"".join(HEADER.pack(1, 1) + b"x" for _ in range(count)))
        await anyio.sleep(0.1)  # the reader fills the queue and waits
        with anyio.fail_after(5):
            got = [await conn.receive() for _ in range(count)]
        assert got == [b"x"] * count
        assert mux.error is None
    await b.aclose()


async def test_reader_that_falls_behind_breaks_the_trunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mux_module, "QUEUE_STALL_TIMEOUT", 0.2)
    a, b = await pair()
    async with Multiplexer(a) as mux:
        conn = mux.open(1)
        frames = b"".join(HEADER.pack(1, 1) + b"x" for _ in range(READ_QUEUE_LENGTH + 1))
        await b.send(frames)
        with anyio.fail_after(5):
            await mux.closed.wait()
        assert isinstance(mux.error, ProtocolError)
        assert "failed to queue payload" in str(mux.error)
        del conn
    await b.aclose()


async def test_reserved_conn_id() -> None:
    a, b = await pair()
    async with Multiplexer(a) as mux:
        with pytest.raises(ProtocolError, match="reserved"):
            mux.open(0)
    await b.aclose()
