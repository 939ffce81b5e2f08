"""Plugin-side pieces: version negotiation, stdio capture, ServeConfig."""

from __future__ import annotations

import asyncio
import sys

import pytest

from plugwire.core.errors import ConfigError
from plugwire.core.handshake import Handshake
from plugwire.grpc import GrpcPlugin, ServeConfig
from plugwire.grpc.server import negotiate_plugin_set
from plugwire.grpc.stdio import STDERR, STDOUT, StdioCapture

A, B, C = GrpcPlugin(), GrpcPlugin(), GrpcPlugin()
SETS = {1: {"p": A}, 2: {"p": B}, 3: {"p": C}}


@pytest.mark.parametrize(
    ("offered", "version"),
    [("1", 1), ("1,2", 2), ("3,1,2", 3), ("2, 9", 2), ("7,8", 1), ("", 1), ("x,2", 2)],
)
def test_negotiate_plugin_set(offered: str, version: int) -> None:
    got, plugins = negotiate_plugin_set(SETS, {"PLUGIN_PROTOCOL_VERSIONS": offered})
    assert got == version
    assert plugins is SETS[version]


def test_serve_config_plugin_sets() -> None:
    hs = Handshake("K", "V", protocol_versions=(1, 2))
    assert ServeConfig(handshake=hs, plugins={"p": A}).plugin_sets() == {1: {"p": A}, 2: {"p": A}}
    cfg = ServeConfig(handshake=hs, versioned_plugins={5: {"p": B}})
    assert cfg.plugin_sets() == {5: {"p": B}}
    with pytest.raises(ConfigError):
        ServeConfig(handshake=hs).plugin_sets()


@pytest.mark.anyio
async def test_stdio_capture_routes_prints_in_order() -> None:
    capture = StdioCapture()
    capture.install()
    try:
        print("one")
        print("two", file=sys.stderr)
        sys.stdout.write("partial")
        sys.stdout.buffer.write(b"\xffraw")
    finally:
        capture.restore()
    seen = {STDOUT: b"", STDERR: b""}
    stream = capture.chunks()
    while seen[STDOUT] != b"one\npartial\xffraw" or seen[STDERR] != b"two\n":
        msg = await asyncio.wait_for(stream.__anext__(), 1)
        seen[msg.channel] += msg.data
    assert sys.stdout is not None and "StdioCapture" not in repr(sys.stdout)


@pytest.mark.anyio
async def test_stdio_capture_bounds_its_buffer() -> None:
    capture = StdioCapture(limit=10)
    for i in range(5):
        capture.push(STDOUT, f"line{i}\n".encode())
    # 30 bytes pushed, at most 10 kept: only the newest line survives.
    assert capture.dropped == 24
    msg = await asyncio.wait_for(capture.chunks().__anext__(), 1)
    assert msg.data == b"line4\n"


@pytest.mark.anyio
async def test_stdio_chunks_are_at_most_1k() -> None:
    capture = StdioCapture()
    capture.push(STDERR, b"x" * 2500)
    stream = capture.chunks()
    sizes = [len((await stream.__anext__()).data) for _ in range(3)]
    assert sizes == [1024, 1024, 452]
