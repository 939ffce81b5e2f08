"""Bad plugins give precise, typed errors, and the host keeps running."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from goplugin_support import KV_PLUGIN, plugin_script

from plugwire.core.errors import (
    HandshakeError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    VersionMismatchError,
)
from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import (
    AnnounceError,
    ClientConfig,
    CoreVersionError,
    PluginClient,
    UnsupportedProtocolError,
)
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = pytest.mark.anyio


def _config(cmd: Sequence[str], tmp_path: Path, **kw: object) -> ClientConfig:
    base: dict[str, object] = {
        "handshake": HANDSHAKE,
        "plugins": {"kv_grpc": KVPlugin()},
        "cmd": list(cmd),
        "env": {"KV_DIR": str(tmp_path)},
        "start_timeout": 30,
    }
    base.update(kw)
    return ClientConfig(**base)  # type: ignore[arg-type]


async def _host_still_works(tmp_path: Path) -> None:
    async with PluginClient(_config(KV_PLUGIN, tmp_path)) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="after", value=b"ok"))
        assert (await kv.Get(kv_pb2.GetRequest(key="after"))).value == b"ok"


async def _start_fails(cfg: ClientConfig) -> PlugwireError:
    client = PluginClient(cfg)
    with pytest.raises(PlugwireError) as info:
        await client.start()
    # A failed start leaves no process behind.
    assert client.pid is None or client.exited
    return info.value


async def test_junk_before_handshake(tmp_path: Path) -> None:
    err = await _start_fails(_config(plugin_script("junk_before_handshake.py"), tmp_path))
    assert isinstance(err, AnnounceError)
    assert "Unrecognized remote plugin message" in err.message
    assert err.seen == "hello from a careless plugin"
    assert err.step == "announce" and err.peer == "python"
    await _host_still_works(tmp_path)


async def test_wrong_cookie(tmp_path: Path) -> None:
    cfg = _config(KV_PLUGIN, tmp_path, handshake=Handshake("BASIC_PLUGIN", "not-hello"))
    err = await _start_fails(cfg)
    assert isinstance(err, PluginExitedError)
    assert err.returncode == 1
    assert any("This binary is a plugin" in line for line in err.stderr_tail)
    await _host_still_works(tmp_path)


async def test_no_common_version(tmp_path: Path) -> None:
    cfg = _config(
        plugin_script("versioned_kv.py"),
        tmp_path,
        handshake=Handshake("BASIC_PLUGIN", "hello", protocol_versions=(4, 5)),
        env={"KV_DIR": str(tmp_path), "KV_VERSIONS": "1,2"},
    )
    err = await _start_fails(cfg)
    assert isinstance(err, VersionMismatchError)
    assert err.offered == (1,)  # the plugin answers its lowest
    assert err.supported == (4, 5)
    assert "incompatible API version" in err.message
    await _host_still_works(tmp_path)


async def test_start_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    err = await _start_fails(
        _config(plugin_script("never_announces.py"), tmp_path, start_timeout=1.5)
    )
    assert time.monotonic() - started < 10
    assert isinstance(err, PluginTimeoutError)
    assert "timeout while waiting for plugin to start" in err.message
    assert "starting up, slowly" in str(err.seen)
    await _host_still_works(tmp_path)


@pytest.mark.parametrize(
    ("line", "error", "fragment"),
    [
        ("2|1|unix|/tmp/x|grpc|", CoreVersionError, "incompatible core API version"),
        ("1|1|unix|/tmp/x|netrpc|", UnsupportedProtocolError, "unsupported plugin protocol"),
        ("1|1|carrier-pigeon|x|grpc|", AnnounceError, "unknown address type"),
        ("1|1|unix|/tmp/x|grpc|" + "not*base64" * 6, AnnounceError, "error parsing server cert"),
    ],
)
async def test_malformed_announce(
    tmp_path: Path, line: str, error: type[PlugwireError], fragment: str
) -> None:
    cfg = _config(plugin_script("raw_announce.py"), tmp_path, env={"RAW_ANNOUNCE": line})
    err = await _start_fails(cfg)
    assert isinstance(err, error)
    assert fragment in err.message


async def test_tls_plugin_without_host_tls(tmp_path: Path) -> None:
    from plugwire.grpc.goplugin.announce import b64_der
    from plugwire.grpc.mtls import generate_cert

    line = f"1|1|unix|/tmp/x|grpc|{b64_der(generate_cert().cert_der)}"
    cfg = _config(plugin_script("raw_announce.py"), tmp_path, env={"RAW_ANNOUNCE": line})
    err = await _start_fails(cfg)
    assert isinstance(err, HandshakeError)
    assert "auto_mtls" in err.message


async def test_command_not_found(tmp_path: Path) -> None:
    err = await _start_fails(_config([str(tmp_path / "no-such-plugin")], tmp_path))
    assert isinstance(err, PluginStartError)
    await _host_still_works(tmp_path)


async def test_plugin_dies_mid_call(tmp_path: Path) -> None:
    async with PluginClient(_config(plugin_script("dies_mid_call.py"), tmp_path)) as client:
        kv = client.dispense("kv_grpc")
        assert (await kv.Get(kv_pb2.GetRequest(key="x"))).value == b"fine"
        with pytest.raises(PluginExitedError) as info:
            await kv.Put(kv_pb2.PutRequest(key="crash", value=b""))
        assert info.value.returncode == 3
        assert info.value.step == "/proto.KV/Put"
        assert client.exited
    await _host_still_works(tmp_path)


async def test_plugin_ignoring_shutdown_gets_sigterm_after_grace(tmp_path: Path) -> None:
    # It answers the start's health check but not Shutdown.
    sock = str(tmp_path / "health.sock")
    cfg = _config(
        plugin_script("health_only.py"), tmp_path, env={"HEALTH_SOCKET": sock}, kill_grace=0.5
    )
    client = PluginClient(cfg)
    await client.start()
    started = time.monotonic()
    await client.aclose()
    elapsed = time.monotonic() - started
    assert client.exited
    assert client.process is not None and client.process.returncode == -15  # SIGTERM
    assert 0.5 <= elapsed < 5
    await _host_still_works(tmp_path)


@pytest.mark.goplugin
async def test_plugin_ignoring_shutdown_and_sigterm_is_sigkilled_within_bound(
    tmp_path: Path,
) -> None:
    cfg = _config(
        plugin_script("health_only.py"),
        tmp_path,
        env={"HEALTH_SOCKET": str(tmp_path / "health.sock"), "IGNORE_SIGTERM": "1"},
        kill_grace=0.5,
    )
    client = PluginClient(cfg)
    assert client.shutdown.grace == 0.5
    bound = client.shutdown.bound  # grace + term_grace
    await client.start()
    started = time.monotonic()
    await client.aclose()
    elapsed = time.monotonic() - started
    assert client.closed and client.exited
    assert client.process is not None and client.process.returncode == -9  # SIGKILL
    assert bound <= elapsed < bound + 2
    await _host_still_works(tmp_path)
