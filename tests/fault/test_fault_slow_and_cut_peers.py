"""Peers that close in the middle of a frame, and slow-loris peers that send one
byte a second: every wait is bounded by a deadline and ends in a typed error."""

from __future__ import annotations

import contextlib
import socket
import sys
import time

import anyio
import anyio.abc
import pytest

from plugwire.core.errors import ConnectionClosedError, PlugwireError
from plugwire.ttrpc import Client
from plugwire.ttrpc._envelope import encode_response
from plugwire.ttrpc._frame import encode_frame
from plugwire.ttrpc.errors import DeadlineExceededError
from plugwire.ttrpc.testing import RawPeer, make_server

pytestmark = pytest.mark.anyio


async def _pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    a, b = socket.socketpair()
    return (
        await anyio.abc.UNIXSocketStream.from_socket(a),
        await anyio.abc.UNIXSocketStream.from_socket(b),
    )


REPLY = encode_frame(1, 2, 0, encode_response(b"\x08\x2a"))


@pytest.mark.ttrpc
@pytest.mark.parametrize("cut", [3, 9, 10, len(REPLY) - 1], ids=lambda c: f"cut{c}")
async def test_ttrpc_server_closing_mid_frame_fails_the_call_typed(cut: int) -> None:
    mine, theirs = await _pair()
    async with Client.from_stream(mine, peer="cutter") as client, anyio.create_task_group() as tg:

        async def server() -> None:
            await theirs.receive()
            await theirs.send(REPLY[:cut])
            await theirs.aclose()

        tg.start_soon(server)
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises(ConnectionClosedError) as info:
            await client.call("svc", "M", b"")
        assert time.monotonic() - started < 1
        assert info.value.peer == "cutter"


@pytest.mark.ttrpc
async def test_ttrpc_client_closing_mid_request_leaves_the_server_serving() -> None:
    server = make_server()
    a, b = socket.socketpair()
    async with anyio.create_task_group() as tg:
        done = anyio.Event()

        async def serve() -> None:
            try:
                await server.serve_socket(a)
            finally:
                done.set()

        tg.start_soon(serve)
        raw = RawPeer(await anyio.abc.UNIXSocketStream.from_socket(b))
        await raw.send(encode_frame(1, 1, 0, b"\x0a\x05hello world")[:12])
        await raw.stream.aclose()
        with anyio.fail_after(5):
            await done.wait()  # the connection's task ended quietly, nothing raised


@pytest.mark.ttrpc
async def test_ttrpc_slow_loris_server_is_bounded_by_the_call_deadline() -> None:
    mine, theirs = await _pair()
    async with Client.from_stream(mine, peer="loris") as client, anyio.create_task_group() as tg:

        async def server() -> None:
            await theirs.receive()
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                for byte in REPLY:  # one byte a second
                    await theirs.send(bytes([byte]))
                    await anyio.sleep(1)

        tg.start_soon(server)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await client.call("svc", "M", b"", timeout=2)
        elapsed = time.monotonic() - started
        assert 1.9 <= elapsed < 3, elapsed
        tg.cancel_scope.cancel()


@pytest.mark.nri
async def test_nri_trunk_closing_mid_frame_ends_every_conn() -> None:
    from plugwire.ttrpc.nri.mux import Multiplexer

    mine, theirs = await _pair()
    async with Multiplexer(mine, peer="cutter") as mux:
        conn = mux.open(1)
        await theirs.send(b"\0\0\0\x01\0\0\0\x10" + b"partial")  # 16 announced, 7 sent
        await theirs.aclose()
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await conn.receive()
        with anyio.fail_after(5):
            await mux.closed.wait()
    assert mux.error is None or isinstance(mux.error, PlugwireError)


@pytest.mark.drp
async def test_http_slow_loris_request_gets_408_at_the_request_deadline() -> None:
    from plugwire.http.limits import Limits
    from plugwire.http.messages import Request, Response
    from plugwire.http.server import HttpServer

    async def handler(request: Request) -> Response:
        return Response.text("ok")

    server = HttpServer(handler, limits=Limits(request_timeout=2), name="loris")
    mine, theirs = await _pair()
    request = b"GET / HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 20 + b"\r\n\r\n"
    answer = bytearray()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.handle_connection, mine)
        started = time.monotonic()

        async def trickle() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                for byte in request:  # one byte a second
                    await theirs.send(bytes([byte]))
                    await anyio.sleep(1)

        tg.start_soon(trickle)
        with (
            anyio.fail_after(10),
            contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError),
        ):
            while True:
                answer += await theirs.receive()
        elapsed = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 408 "), bytes(answer[:60])
    assert 1.9 <= elapsed < 4, elapsed


@pytest.mark.goplugin
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # grpc.aio runs on asyncio only
async def test_goplugin_announce_trickled_one_byte_a_second_times_out() -> None:
    from plugwire.core import Host
    from plugwire.grpc.goplugin import ClientConfig, PluginClient
    from plugwire.grpc.goplugin.examples import HANDSHAKE
    from plugwire.grpc.goplugin.examples.kv import KVPlugin

    trickler = (
        "import sys, time\n"
        "for c in '1|1|unix|/tmp/never.sock|grpc|\\n':\n"
        "    sys.stdout.write(c); sys.stdout.flush(); time.sleep(1)\n"
    )
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[sys.executable, "-c", trickler],
        start_timeout=2,
    )
    async with Host("fault") as host:
        started = time.monotonic()
        with pytest.raises(PlugwireError) as info:
            await host.launch(PluginClient(config))
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError), repr(info.value)
    assert 2 <= elapsed < 5, elapsed
