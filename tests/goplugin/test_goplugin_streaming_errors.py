"""Streaming calls on dispensed stubs fail with plugwire's typed errors, as unary
calls do: RemoteError for a status, PluginExitedError when the plugin dies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from goplugin_support import plugin_script

from plugwire.core.errors import ClosedError, PluginExitedError, RemoteError
from plugwire.core.status import StatusCode
from plugwire.grpc.goplugin import ClientConfig, GrpcBroker, GrpcPlugin, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE

pytestmark = pytest.mark.anyio


class Streams:
    """The host's stub for tests/goplugin/plugins/streaming.py (raw bytes)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.count = channel.unary_stream("/test.Streams/Count")
        self.join = channel.stream_unary("/test.Streams/Join")
        self.shout = channel.stream_stream("/test.Streams/Shout")


class StreamsPlugin(GrpcPlugin):
    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> Streams:
        return Streams(channel)


def _config(tmp_path: Path, *, multiplex: bool = False) -> ClientConfig:
    return ClientConfig(
        handshake=HANDSHAKE,
        plugins={"streams": StreamsPlugin()},
        cmd=plugin_script("streaming.py"),
        cwd=str(tmp_path),
        start_timeout=30,
        multiplex=multiplex,
    )


async def _items(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def _collect(call: Any) -> list[bytes]:
    return [reply async for reply in call]


@pytest.mark.parametrize("multiplex", [False, True], ids=["plain", "multiplexed"])
async def test_streams_work_and_failures_are_remote_errors(tmp_path: Path, multiplex: bool) -> None:
    async with PluginClient(_config(tmp_path, multiplex=multiplex)) as client:
        streams = client.dispense("streams")

        # Successful calls of each kind pass their values through.
        call = streams.count(b"3", timeout=10)
        assert await _collect(call) == [b"0", b"1", b"2"]
        assert await call.code() == grpc.StatusCode.OK
        assert await streams.join(_items(b"a", b"b"), timeout=10) == b"a+b"
        assert await _collect(streams.shout(_items(b"x", b"y"), timeout=10)) == [b"X", b"Y"]

        # Server streaming: replies before the failure arrive, then the typed error.
        seen: list[bytes] = []
        with pytest.raises(RemoteError) as info:
            async for reply in streams.count(b"fail", timeout=10):
                seen.append(reply)
        assert seen == [b"0", b"1"]
        assert info.value.code == StatusCode.INVALID_ARGUMENT
        assert info.value.message == "no counting to fail"
        assert info.value.step == "/test.Streams/Count"
        assert info.value.peer == client.name

        # ... and through read().
        call = streams.count(b"fail", timeout=10)
        assert await call.read() == b"0"
        assert await call.read() == b"1"
        with pytest.raises(RemoteError) as info:
            await call.read()
        assert info.value.code == StatusCode.INVALID_ARGUMENT

        # PluginClient streaming.
        with pytest.raises(RemoteError) as info:
            await streams.join(_items(b"a", b"fail"), timeout=10)
        assert info.value.code == StatusCode.FAILED_PRECONDITION
        assert info.value.step == "/test.Streams/Join"

        # Bidirectional, written and read by hand: the failure surfaces on read.
        call = streams.shout(timeout=10)
        await call.write(b"hi")
        assert await call.read() == b"HI"
        await call.write(b"fail")
        with pytest.raises(RemoteError) as info:
            await call.read()
        assert info.value.code == StatusCode.OUT_OF_RANGE
        assert info.value.message == "too loud"
        # Writing to the failed call is the same typed error.
        with pytest.raises(RemoteError):
            await call.write(b"again")

        # Writing after done_writing() is a ClosedError, not a raw grpc error.
        call = streams.shout(timeout=10)
        await call.write(b"a")
        await call.done_writing()
        assert await call.read() == b"A"
        with pytest.raises(ClosedError) as closed:
            await call.write(b"b")
        assert closed.value.step == "/test.Streams/Shout"

        # The plugin keeps serving.
        assert await _collect(streams.count(b"1", timeout=10)) == [b"0"]


@pytest.mark.parametrize("kind", ["server", "client", "bidi"])
async def test_plugin_dying_mid_stream_is_plugin_exited_error(tmp_path: Path, kind: str) -> None:
    async with PluginClient(_config(tmp_path)) as client:
        streams = client.dispense("streams")
        with pytest.raises(PluginExitedError) as info:
            if kind == "server":
                await _collect(streams.count(b"crash", timeout=10))
            elif kind == "client":
                await streams.join(_items(b"a", b"crash"), timeout=10)
            else:
                await _collect(streams.shout(_items(b"a", b"crash"), timeout=10))
        assert info.value.returncode == 4
        assert client.exited
