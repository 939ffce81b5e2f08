"""Sockets and their directories belong to the user and nobody else can enter
them; plugins get a clean, explicit environment; a go-plugin SecureConfig
checksum mismatch refuses the launch before anything runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import uuid
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from e2e.test_crossfamily import FAMILIES, launched

from plugwire.core import Host
from plugwire.grpc.goplugin import ClientConfig, PluginClient, SecureConfig
from plugwire.grpc.goplugin.errors import ChecksumMismatchError
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = [pytest.mark.anyio]

CANARY = "PLUGWIRE_TEST_HOST_SECRET"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_private(path: Path) -> None:
    """``path`` (a socket) is the user's, and so is its 0700 directory."""
    st = path.lstat()
    assert stat.S_ISSOCK(st.st_mode), path
    assert st.st_uid == os.getuid(), (path, st.st_uid)
    assert st.st_mode & 0o077 == 0 or path.parent.stat().st_mode & 0o077 == 0, oct(st.st_mode)
    dst = path.parent.stat()
    assert dst.st_uid == os.getuid()
    assert stat.S_IMODE(dst.st_mode) == 0o700, (path.parent, oct(dst.st_mode))


@pytest.mark.goplugin
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_goplugin_sockets_are_private(tmp_path: Path, mtls: bool) -> None:
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.kv"],
        env={"KV_DIR": str(tmp_path)},
        auto_mtls=mtls,
        start_timeout=30,
    )
    async with PluginClient(config) as client:
        address = client.address
        assert address is not None and address.network == "unix", address
        assert_private(Path(address.address))


@pytest.mark.drp
async def test_drp_sockets_are_private() -> None:
    from plugwire.http.drp import ProviderPlugin

    command = [sys.executable, "-m", "plugwire.http.drp._demo_provider"]
    async with Host("security") as host:
        plugin = await host.launch(ProviderPlugin(command, name="drp", token="t"))
        assert plugin.socket_dir is not None
        socks = sorted(plugin.socket_dir.glob("*.sock"))
        assert socks, list(plugin.socket_dir.iterdir())
        for sock in socks:
            assert_private(sock)


@pytest.mark.nri
async def test_nri_runtime_socket_is_private(tmp_path: Path) -> None:
    from plugwire.ttrpc.nri import Runtime

    sock = tmp_path / "run" / "nri.sock"
    async with Runtime("security", "0.1", socket_path=sock, plugin_path=tmp_path / "none"):
        assert_private(sock)


@pytest.mark.goplugin
@pytest.mark.cipd
@pytest.mark.nri
@pytest.mark.drp
@pytest.mark.tasks
async def test_no_family_leaks_a_host_secret_into_its_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = uuid.uuid4().hex
    monkeypatch.setenv(CANARY, secret)
    leaks = {}
    async with Host("security") as host, launched(host, tmp_path, FAMILIES) as plugins:
        for family, (handle, call) in plugins.items():
            await call()
            assert handle.process is not None
            environ = Path(f"/proc/{handle.process.pid}/environ").read_bytes().split(b"\0")  # noqa: ASYNC240
            names = {e.split(b"=", 1)[0].decode() for e in environ if e}
            if CANARY in names or any(secret.encode() in e for e in environ):
                leaks[family] = sorted(names)
    assert not leaks, f"the host secret reached: {sorted(leaks)}"


@pytest.mark.goplugin
async def test_secure_config_checksum_mismatch_refuses_the_launch(tmp_path: Path) -> None:
    marker = f"secure-{uuid.uuid4().hex}"
    script = tmp_path / f"{marker}.py"
    script.write_text("import time\ntime.sleep(60)\n")
    script.chmod(0o755)
    wrapper = tmp_path / marker
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m plugwire.grpc.goplugin.examples.kv\n")
    wrapper.chmod(0o755)
    good = hashlib.sha256(wrapper.read_bytes()).digest()

    def config(checksum: bytes) -> ClientConfig:
        return ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": KVPlugin()},
            cmd=[str(wrapper)],
            env={"KV_DIR": str(tmp_path)},
            secure_config=SecureConfig(checksum),
            start_timeout=30,
        )

    async with Host("security") as host:
        with pytest.raises(ChecksumMismatchError) as info:
            await host.launch(PluginClient(config(bytes(32))))
        assert info.value.peer and not host.plugins
        # nothing was started
        assert not [
            p
            for p in Path("/proc").iterdir()  # noqa: ASYNC240
            if p.name.isdigit() and _cmdline_has(p, marker.encode())
        ]
        # the right checksum launches it
        client = await host.launch(PluginClient(config(good)))
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="k", value=b"v"))
        await anyio.lowlevel.checkpoint()


def _cmdline_has(proc: Path, needle: bytes) -> bool:
    with contextlib.suppress(OSError):
        return needle in (proc / "cmdline").read_bytes()
    return False
