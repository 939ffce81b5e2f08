"""A plugin launched by plugwire's host leaves nothing on disk, however it ends.

The host makes the plugin's socket directory (``PLUGIN_UNIX_SOCKET_DIR``, as
go-plugin does) and removes it once the plugin is gone; a plugwire plugin keeps its
own files there too (with AutoMTLS, the private directory of the TLS front end's gRPC
socket), so even a SIGKILLed plugin, which cleans up nothing, leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import grpc
import pytest
from goplugin_support import KV_PLUGIN

from plugwire.grpc.goplugin import ClientConfig, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = pytest.mark.anyio


def _client(tmp_path: Path, scratch: Path, mtls: bool) -> PluginClient:
    return PluginClient(
        ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": KVPlugin()},
            cmd=list(KV_PLUGIN),
            cwd=str(tmp_path),
            env={"KV_DIR": str(tmp_path), "TMPDIR": str(scratch)},
            auto_mtls=mtls,
            start_timeout=30,
        )
    )


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temp dir of the host (this process) and of the plugin: a short path, so
    that the plugin's private socket fits in ``sockaddr_un`` inside the host's socket
    directory (a deep pytest ``tmp_path`` does not; the plugin then falls back to its
    temp dir, as tested below)."""
    path = Path(tempfile.mkdtemp(prefix="pw-"))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_a_sigkilled_plugin_leaves_nothing(tmp_path: Path, scratch: Path, mtls: bool) -> None:
    client = _client(tmp_path, scratch, mtls)
    async with client:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="k", value=b"v"))
        assert client.address is not None
        assert Path(client.address.address).is_relative_to(scratch)
        assert os.listdir(scratch)
        assert client.pid is not None
        os.kill(client.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            while not client.exited:  # noqa: ASYNC110  (no event to wait on)
                await anyio.sleep(0.01)
    assert os.listdir(scratch) == []


@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_a_plugin_shut_down_leaves_nothing(tmp_path: Path, scratch: Path, mtls: bool) -> None:
    client = _client(tmp_path, scratch, mtls)
    async with client:
        await client.ping()
    assert client.process is not None and client.process.returncode == 0
    assert os.listdir(scratch) == []


@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_a_plugin_shut_down_mid_call_exits_at_once(
    tmp_path: Path, scratch: Path, mtls: bool
) -> None:
    """A served plugin's process ends right after a Shutdown, as a Go plugin's does: a
    call still running does not hold it up (nor its server's orderly stop), the host's
    call ends (cancelled with the connection), and the plugin's files are gone."""
    from goplugin_support import plugin_script
    from test_goplugin_streaming_errors import StreamsPlugin

    client = PluginClient(
        ClientConfig(
            handshake=HANDSHAKE,
            plugins={"streams": StreamsPlugin()},
            cmd=plugin_script("streaming.py"),
            cwd=str(tmp_path),
            env={"TMPDIR": str(scratch)},
            auto_mtls=mtls,
            start_timeout=30,
        )
    )
    async with client:
        call = client.dispense("streams").count(b"hang", timeout=60)
        assert await call.read() == b"0"  # the call runs in the plugin, and never ends
        with anyio.fail_after(10):
            await client.aclose()  # Shutdown, then the host waits for the exit
        assert client.process is not None and client.process.returncode == 0
        with anyio.fail_after(10):  # the host's call ended with the connection
            assert await call.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert os.listdir(scratch) == []


def test_the_private_directory_goes_in_the_socket_directory(tmp_path: Path) -> None:
    from plugwire.grpc._tlsproxy import private_socket_path

    directory, path = private_socket_path("plugwire-srv", str(tmp_path))
    try:
        assert Path(directory).parent == tmp_path and path == os.path.join(directory, "s")
        assert os.stat(directory).st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(directory)
    deep = tmp_path / ("x" * 90)
    deep.mkdir()
    directory, path = private_socket_path("plugwire-srv", str(deep))
    try:  # too long for sockaddr_un there: the temp dir instead
        assert Path(directory).parent == Path(tempfile.gettempdir())
        assert len(path) <= 107
    finally:
        shutil.rmtree(directory)
