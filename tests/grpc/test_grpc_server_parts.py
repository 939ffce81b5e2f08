"""Plugin-side pieces: version negotiation, stdio capture, ServeConfig."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from plugwire.core.errors import ConfigError
from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import GrpcPlugin, ServeConfig
from plugwire.grpc.goplugin.config import PluginEnv
from plugwire.grpc.goplugin.server import negotiate_plugin_set
from plugwire.grpc.goplugin.stdio import STDERR, STDOUT, StdioCapture

A, B, C = GrpcPlugin(), GrpcPlugin(), GrpcPlugin()
SETS = {1: {"p": A}, 2: {"p": B}, 3: {"p": C}}


@pytest.mark.parametrize(
    ("offered", "version"),
    [("1", 1), ("1,2", 2), ("3,1,2", 3), ("2, 9", 2), ("7,8", 1), ("", 1), ("x,2", 2)],
)
def test_negotiate_plugin_set(offered: str, version: int) -> None:
    got, plugins = negotiate_plugin_set(
        SETS, PluginEnv.from_env({"PLUGIN_PROTOCOL_VERSIONS": offered}).protocol_versions
    )
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
async def test_stdio_capture_waits_until_its_streams_have_sent() -> None:
    """A plugin about to exit waits for each open StreamStdio call to end after
    close(), so what it wrote is sent; bounded by a timeout; no stream, no wait."""
    capture = StdioCapture()
    assert await capture.wait_sent(0.01)  # nobody streams
    capture._stream_started()  # a host's StreamStdio call, as the servicer counts it
    capture.push(STDOUT, b"last words\n")
    capture.close()
    assert not await capture.wait_sent(0.05)  # the call has not ended: timed out
    sent = [item async for item in capture.chunks()]  # the call sends what is queued...
    assert [item.data for item in sent] == [b"last words\n"]
    asyncio.get_running_loop().call_later(0.02, capture._stream_ended, None)  # ...and ends
    assert await capture.wait_sent(1.0)


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


@pytest.mark.anyio
async def test_serve_async_in_process_socket_group_and_shutdown(tmp_path: Path) -> None:
    import io
    import os
    import stat

    import grpc

    from plugwire.grpc.goplugin import parse_announce, serve_async
    from plugwire.grpc.goplugin.controller import shutdown
    from plugwire.grpc.goplugin.examples import HANDSHAKE
    from plugwire.grpc.goplugin.examples.kv import KVPlugin
    from plugwire.grpc.goplugin.health import check_health

    out = io.StringIO()
    env = {
        "BASIC_PLUGIN": "hello",
        "PLUGIN_PROTOCOL_VERSIONS": "1",
        "PLUGIN_UNIX_SOCKET_DIR": str(tmp_path),
        "PLUGIN_UNIX_SOCKET_GROUP": str(os.getgid()),
    }
    cfg = ServeConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin(tmp_path)},
        configure_logging=False,
        sync_stdio=False,
    )
    task = asyncio.ensure_future(serve_async(cfg, environ=env, stdout=out))
    for _ in range(500):
        if out.getvalue().endswith("\n") or task.done():
            break
        await asyncio.sleep(0.01)
    line = out.getvalue()
    assert line.count("\n") == 1 and line.endswith("|grpc|\n")
    announce = parse_announce(line, versions=[1])
    path = Path(announce.address)
    assert path.parent == tmp_path and path.name.startswith("plugin")
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == os.getgid()
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        assert await check_health(channel, timeout=5) == 1
        await shutdown(channel)
    assert await asyncio.wait_for(task, 10) == 0
    assert not os.path.exists(path)  # noqa: ASYNC240


@pytest.mark.anyio
async def test_serve_async_refuses_wrong_cookie(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from plugwire.grpc.goplugin import serve_async
    from plugwire.grpc.goplugin.examples import HANDSHAKE
    from plugwire.grpc.goplugin.examples.kv import KVPlugin

    out = io.StringIO()
    cfg = ServeConfig(handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()})
    assert await serve_async(cfg, environ={"BASIC_PLUGIN": "nope"}, stdout=out) == 1
    assert out.getvalue() == ""
    assert "This binary is a plugin" in capsys.readouterr().err


def test_reattach_config_json_roundtrip() -> None:
    from plugwire.core.transport import Address
    from plugwire.grpc.goplugin import ReattachConfig

    rc = ReattachConfig(protocol_version=5, address=Address("unix", "/tmp/p.sock"), pid=42)
    data = rc.to_json()
    assert data == {
        "Protocol": "grpc",
        "ProtocolVersion": 5,
        "Pid": 42,
        "Test": False,
        "Addr": {"Network": "unix", "String": "/tmp/p.sock"},
    }
    assert ReattachConfig.from_json(data) == rc
    with pytest.raises(ConfigError):
        ReattachConfig.from_json({"Protocol": "grpc", "Addr": {"Network": "udp", "String": "x"}})
    with pytest.raises(ConfigError):
        ReattachConfig.from_json({"Protocol": "grpc"})
