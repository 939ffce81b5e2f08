"""grpc.aio servers and channels talking through yamux sessions via the bridges
(asyncio only: grpc.aio)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import grpc
import grpc.aio
import pytest

from plugwire.core.errors import ClosedError, ConfigError
from plugwire.grpc import yamux
from plugwire.grpc._yamux_bridge import (
    GoPluginMuxer,
    NoRouteError,
    YamuxDialBridge,
    YamuxServeBridge,
    splice,
)

pytestmark = pytest.mark.anyio

QUIET = yamux.YamuxConfig(enable_keepalive=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def echo_handler(name: str) -> grpc.GenericRpcHandler[bytes, bytes]:
    async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def who(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return name.encode()

    async def chat(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request.upper()

    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Who": grpc.unary_unary_rpc_method_handler(who),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )


@asynccontextmanager
async def grpc_server(name: str, directory: str) -> AsyncIterator[str]:
    path = os.path.join(directory, f"{name}.sock")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([echo_handler(name)])
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    try:
        yield path
    finally:
        await server.stop(None)


@asynccontextmanager
async def sessions() -> AsyncIterator[tuple[yamux.Session, yamux.Session]]:
    a, b = socket.socketpair()
    host_side = await anyio.abc.SocketStream.from_socket(a)
    plugin_side = await anyio.abc.SocketStream.from_socket(b)
    async with yamux.client(host_side, QUIET) as host, yamux.server(plugin_side, QUIET) as plugin:
        yield host, plugin


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 (polls plain state)
            await anyio.sleep(0.01)


async def chat(channel: grpc.aio.Channel, messages: list[bytes]) -> list[bytes]:
    # In a function of its own: a live streaming call object keeps grpc.aio's
    # connection open after the channel is closed.
    call = channel.stream_stream("/test.Echo/Chat", None, None)(iter(messages), timeout=10)
    return [reply async for reply in call]


async def test_grpc_server_and_channel_through_a_yamux_session() -> None:
    tasks_before = len(asyncio.all_tasks())
    with tempfile.TemporaryDirectory(prefix="pw-") as tmp:
        async with grpc_server("main", tmp) as main, sessions() as (host, plugin):
            async with (
                YamuxServeBridge(plugin, default_target=main) as serve,
                YamuxDialBridge(host) as dial,
            ):
                socket_path = dial.path
                assert await anyio.Path(socket_path).exists()
                async with grpc.aio.insecure_channel(dial.target) as channel:
                    unary = channel.unary_unary("/test.Echo/Unary", None, None)
                    assert await unary(b"hello", timeout=10) == b"hello"
                    replies = await asyncio.gather(
                        *(unary(b"call %d" % i, timeout=20) for i in range(50))
                    )
                    assert replies == [b"call %d" % i for i in range(50)]
                    big = os.urandom(3 * 1024 * 1024)  # far beyond one yamux window
                    assert await unary(big, timeout=30) == big
                    assert await chat(channel, [b"a", b"b", b"c"]) == [b"A", b"B", b"C"]
                    assert serve.active_connections == 1  # one HTTP/2 connection
                    assert host.num_streams == 1 and plugin.num_streams == 1
                # The channel closed its connection: the stream closes on both sides.
                await eventually(lambda: host.num_streams == 0 and plugin.num_streams == 0)
                await eventually(
                    lambda: serve.active_connections == 0 and dial.active_connections == 0
                )
            assert not await anyio.Path(socket_path).exists()
            assert not await anyio.Path(socket_path).parent.exists()
    await anyio.lowlevel.checkpoint()
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_knocks_route_streams_to_brokered_servers() -> None:
    with tempfile.TemporaryDirectory(prefix="pw-") as tmp:
        async with (
            grpc_server("main", tmp) as main,
            grpc_server("brokered", tmp) as brokered,
            sessions() as (host, plugin),
            YamuxServeBridge(plugin, default_target=main) as serve,
            YamuxDialBridge(host) as main_dial,
            YamuxDialBridge(host, before_open=lambda: knock(serve, 7)) as brokered_dial,
        ):
            serve.add_route(7, brokered)
            with pytest.raises(NoRouteError, match="no listener for id 9"):
                serve.knock(9)
            async with (
                grpc.aio.insecure_channel(main_dial.target) as main_channel,
                grpc.aio.insecure_channel(brokered_dial.target) as brokered_channel,
            ):
                who_main = main_channel.unary_unary("/test.Echo/Who", None, None)
                who_brokered = brokered_channel.unary_unary("/test.Echo/Who", None, None)
                assert await who_brokered(b"", timeout=10) == b"brokered"
                assert await who_main(b"", timeout=10) == b"main"
                assert await who_brokered(b"", timeout=10) == b"brokered"
            serve.remove_route(7)
            with pytest.raises(NoRouteError):
                serve.knock(7)


async def knock(bridge: YamuxServeBridge, service_id: int) -> None:
    # Stands in for the ConnInfo knock/ack exchange on the broker stream.
    bridge.knock(service_id)


async def test_stream_without_a_route_is_reset_and_the_call_fails() -> None:
    async with (
        sessions() as (host, plugin),
        YamuxServeBridge(plugin),
        YamuxDialBridge(host) as dial,
        grpc.aio.insecure_channel(dial.target) as channel,
    ):
        unary = channel.unary_unary("/test.Echo/Unary", None, None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unary(b"x", timeout=3, wait_for_ready=False)
        assert info.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        assert plugin.num_streams == 0


async def test_failing_knock_closes_the_connection_without_opening() -> None:
    async def refuse() -> None:
        raise NoRouteError("no listener for id 3")

    async with (
        sessions() as (host, plugin),
        YamuxDialBridge(host, before_open=refuse) as dial,
    ):
        conn = await anyio.connect_unix(dial.path)
        with anyio.fail_after(5):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await conn.receive()
        await conn.aclose()
        assert host.num_streams == 0 and plugin.num_streams == 0


async def test_session_end_aborts_bridged_connections() -> None:
    with tempfile.TemporaryDirectory(prefix="pw-") as tmp:
        async with (
            grpc_server("main", tmp) as main,
            sessions() as (host, plugin),
            YamuxServeBridge(plugin, default_target=main) as serve,
            YamuxDialBridge(host) as dial,
        ):
            conn = await anyio.connect_unix(dial.path)
            await eventually(lambda: serve.active_connections == 1)
            await plugin.aclose()
            await serve.wait_closed()
            await eventually(lambda: serve.active_connections == 0)
            with anyio.fail_after(5):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    while True:
                        await conn.receive()  # HTTP/2 settings, then EOF
            await conn.aclose()
            await eventually(lambda: dial.active_connections == 0)


async def test_splice_propagates_half_close() -> None:
    a1, a2 = socket.socketpair()
    b1, b2 = socket.socketpair()
    left = await anyio.abc.SocketStream.from_socket(a1)
    left_inner = await anyio.abc.SocketStream.from_socket(a2)
    right_inner = await anyio.abc.SocketStream.from_socket(b1)
    right = await anyio.abc.SocketStream.from_socket(b2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(splice, left_inner, right_inner)
        await left.send(b"request")
        await left.send_eof()
        assert await right.receive() == b"request"
        with pytest.raises(anyio.EndOfStream):
            await right.receive()
        await right.send(b"response")
        await right.send_eof()
        assert await left.receive() == b"response"
        with pytest.raises(anyio.EndOfStream):
            await left.receive()
    await left.aclose()
    await right.aclose()


def knocker(peer: GoPluginMuxer) -> Callable[[int], Awaitable[None]]:
    """The broker's knock, minus the ConnInfo round trip: the peer's ack is its
    ``accept_knock`` result."""

    async def knock(service_id: int) -> None:
        error = peer.accept_knock(service_id)
        if error:
            raise NoRouteError(error)

    return knock


async def test_go_plugin_muxers_main_connection_and_brokered_both_ways() -> None:
    tasks_before = len(asyncio.all_tasks())
    a, b = socket.socketpair()
    host_conn = await anyio.abc.SocketStream.from_socket(a)
    plugin_conn = await anyio.abc.SocketStream.from_socket(b)
    with tempfile.TemporaryDirectory(prefix="pw-") as tmp:
        async with (
            grpc_server("main", tmp) as main,
            grpc_server("plugin-brokered", tmp) as plugin_brokered,
            grpc_server("host-brokered", tmp) as host_brokered,
            GoPluginMuxer(plugin_conn, plugin=True, main_target=main) as plugin,
            GoPluginMuxer(host_conn, plugin=False) as host,
        ):
            assert host.session.is_client and not plugin.session.is_client
            plugin.listen(5, plugin_brokered)  # plugin: broker.AcceptAndServe(5)
            host.listen(9, host_brokered)  # host: broker.AcceptAndServe(9)
            targets = {
                "main": host.main_channel_target,
                "plugin-brokered": await host.dial_target(5, knocker(plugin)),
                "host-brokered": await plugin.dial_target(9, knocker(host)),
            }
            assert await host.dial_target(5, knocker(plugin)) == targets["plugin-brokered"]
            for expected, target in targets.items():
                async with grpc.aio.insecure_channel(target) as channel:
                    who = channel.unary_unary("/test.Echo/Who", None, None)
                    assert await who(b"", timeout=10) == expected.encode()
            assert host.accept_knock(4) == "no listener for id 4"
            # A dial whose knock is refused never opens a stream: the call fails.
            async with grpc.aio.insecure_channel(await plugin.dial_target(4, knocker(host))) as ch:
                with pytest.raises(grpc.aio.AioRpcError):
                    await ch.unary_unary("/test.Echo/Who", None, None)(b"", timeout=2)
            await host.close_dial(5)
            await eventually(lambda: host.session.num_streams == 0)
        assert host.session.closed and plugin.session.closed
    await anyio.lowlevel.checkpoint()
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_plugin_side_muxer_needs_a_main_target() -> None:
    a, b = socket.socketpair()
    conn = await anyio.abc.SocketStream.from_socket(a)
    with pytest.raises(ConfigError):
        GoPluginMuxer(conn, plugin=True)
    await conn.aclose()
    b.close()


async def test_open_dial_gives_each_channel_its_own_bridge_until_closed() -> None:
    a, b = socket.socketpair()
    host_conn = await anyio.abc.SocketStream.from_socket(a)
    plugin_conn = await anyio.abc.SocketStream.from_socket(b)
    knocks: list[int] = []
    with tempfile.TemporaryDirectory(prefix="pw-") as tmp:
        async with (
            grpc_server("main", tmp) as main,
            grpc_server("brokered", tmp) as brokered,
            GoPluginMuxer(plugin_conn, plugin=True, main_target=main) as plugin,
            GoPluginMuxer(host_conn, plugin=False, directory=tmp) as host,
        ):
            plugin.listen(3, brokered)

            async def knock() -> None:
                knocks.append(3)
                error = plugin.accept_knock(3)
                if error:
                    raise NoRouteError(error)

            first, close_first = await host.open_dial(knock)
            second, close_second = await host.open_dial(knock)
            assert first != second
            assert first.startswith(f"unix:{tmp}{os.sep}")
            for target in (first, second):
                async with grpc.aio.insecure_channel(target) as channel:
                    who = channel.unary_unary("/test.Echo/Who", None, None)
                    assert await who(b"", timeout=10) == b"brokered"
            assert knocks == [3, 3]
            await close_first()
            await close_first()  # idempotent
            await eventually(lambda: not os.path.exists(first.removeprefix("unix:")))
            assert await anyio.Path(second.removeprefix("unix:")).exists()
            await close_second()
            await eventually(lambda: not os.path.exists(second.removeprefix("unix:")))
        with pytest.raises(ClosedError):
            await host.open_dial(knock)
