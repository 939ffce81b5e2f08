"""plugwire.ttrpc.sockets: the asyncio fast-path stream keeps write order."""

from __future__ import annotations

import socket

import anyio
import pytest

from plugwire.ttrpc.sockets import AsyncioSocketStream, socket_stream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # AsyncioSocketStream is the asyncio fast path


@pytest.mark.anyio
async def test_send_after_corked_try_send_keeps_order() -> None:
    left, right = socket.socketpair()
    writer = await socket_stream(left)
    reader = await socket_stream(right)
    assert isinstance(writer, AsyncioSocketStream)
    try:
        # frames corked by try_send() in this loop iteration, then a send():
        # the peer must see them in the order they were written
        assert writer.try_send(b"1", cork=True)
        assert writer.try_send(b"2", cork=True)
        await writer.send(b"3")
        writer.try_send(b"4", cork=False)
        received = b""
        with anyio.fail_after(5):
            while len(received) < 4:
                received += await reader.receive()
        assert received == b"1234"
    finally:
        await writer.aclose()
        await reader.aclose()


@pytest.mark.anyio
async def test_deliver_to_hands_over_buffered_then_live_data_and_the_end() -> None:
    left, right = socket.socketpair()
    writer = await socket_stream(left)
    reader = await socket_stream(right)
    assert isinstance(reader, AsyncioSocketStream)
    got: list[bytes] = []
    both = anyio.Event()
    ended = anyio.Event()

    def sink(data: bytes) -> None:
        got.append(data)
        if b"".join(got) == b"beforeafter":
            both.set()

    try:
        await writer.send(b"before")
        with anyio.fail_after(5):
            for _ in range(500):  # until it arrived and was buffered (not yet received)
                if reader._protocol.buffer:
                    break
                await anyio.sleep(0.01)
            reader.deliver_to(sink, ended.set)
            assert got == [b"before"]  # what was buffered comes first, synchronously
            await writer.send(b"after")
            await both.wait()
            assert not ended.is_set()
            await writer.aclose()
            await ended.wait()  # then the end of the stream
    finally:
        await writer.aclose()
        await reader.aclose()


@pytest.mark.anyio
async def test_receive_reads_more_than_the_receive_buffer_in_order() -> None:
    # the socket is read into one 64 KiB buffer per connection: a bigger message
    # arrives in several chunks, each a copy of what was read, in order
    left, right = socket.socketpair()
    writer = await socket_stream(left)
    reader = await socket_stream(right)
    payload = bytes(range(256)) * 4096  # 1 MiB
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer.send, payload)
                received = bytearray()
                while len(received) < len(payload):
                    received += await reader.receive()
        assert bytes(received) == payload
    finally:
        await writer.aclose()
        await reader.aclose()
