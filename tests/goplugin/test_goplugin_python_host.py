"""plugwire's PluginClient launches go-plugin plugins: Go (hashicorp/go-plugin) and Python ones."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from goplugin_support import COUNTER_PLUGIN, KV_PLUGIN, GoBinaries

from plugwire.core.errors import ConfigError, PluginExitedError, PlugwireError, RemoteError
from plugwire.grpc.goplugin import (
    ChecksumMismatchError,
    ClientConfig,
    PluginClient,
    ReattachConfig,
    SecureConfig,
)
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.counter import CounterPlugin
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = pytest.mark.anyio

PLUGINS = {"kv_grpc": KVPlugin(), "counter": CounterPlugin()}


def _config(cmd: Sequence[str], tmp_path: Path, **kw: object) -> ClientConfig:
    base: dict[str, object] = {
        "handshake": HANDSHAKE,
        "plugins": PLUGINS,
        "cmd": list(cmd),
        "cwd": str(tmp_path),
        "start_timeout": 30,
    }
    base.update(kw)
    base["env"] = {"KV_DIR": str(tmp_path), **kw.get("env", {})}  # type: ignore[dict-item]
    return ClientConfig(**base)  # type: ignore[arg-type]


async def _kv_roundtrip(client: PluginClient) -> None:
    kv = client.dispense("kv_grpc")
    await kv.Put(kv_pb2.PutRequest(key="alpha", value=b"one"))
    await kv.Put(kv_pb2.PutRequest(key="beta", value=b"\x00\xff"))
    assert (await kv.Get(kv_pb2.GetRequest(key="alpha"))).value == b"one"
    assert (await kv.Get(kv_pb2.GetRequest(key="beta"))).value == b"\x00\xff"
    await client.ping()


async def _wait_for(buf: io.BytesIO, text: bytes) -> None:
    import anyio

    with anyio.fail_after(5):
        while text not in buf.getvalue():  # noqa: ASYNC110  (a BytesIO has no event)
            await anyio.sleep(0.01)


@pytest.mark.interop
@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_go_kv_plugin(
    go: GoBinaries, tmp_path: Path, mtls: bool, mux: bool, caplog: pytest.LogCaptureFixture
) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    caplog.set_level(logging.DEBUG, logger="plugwire.plugin")
    cfg = _config(
        [str(go.kvplugin)],
        tmp_path,
        auto_mtls=mtls,
        multiplex=mux,
        sync_stdout=out,
        sync_stderr=err,
    )
    client = PluginClient(cfg)
    async with client:
        await _kv_roundtrip(client)
        assert client.negotiated_version == 1
        assert client.address is not None and client.address.network == "unix"
        assert Path(client.address.address).parent.name.startswith("plugin-dir")
        await _wait_for(out, b"put beta")
        await _wait_for(err, b"put beta")
        with pytest.raises(RemoteError) as info:
            await client.dispense("kv_grpc").Get(kv_pb2.GetRequest(key="nope"))
        assert info.value.code == 2 and "nope" in info.value.message
    assert out.getvalue() == b"goplugin stdout: put alpha\ngoplugin stdout: put beta\n"
    assert err.getvalue() == b"goplugin stderr: put alpha\ngoplugin stderr: put beta\n"
    assert client.exited
    # The plugin's hclog lines became records with their level (and fields).
    puts = [
        r
        for r in caplog.records
        if r.name == "plugwire.plugin.kvplugin" and r.getMessage().startswith("put")
    ]
    assert [r.levelno for r in puts] == [logging.INFO, logging.INFO]
    assert [r.plugin_fields["key"] for r in puts] == ["alpha", "beta"]  # type: ignore[attr-defined]
    assert "failed to exit gracefully" not in caplog.text


@pytest.mark.interop
async def test_upstream_go_kv_plugin_unmodified(go: GoBinaries, tmp_path: Path) -> None:
    """go-plugin's own examples/grpc/plugin-go-grpc (it stores values in files)."""
    async with PluginClient(
        _config([str(go.upstream_kv_plugin)], tmp_path, auto_mtls=True)
    ) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="hello", value=b"world"))
        reply = await kv.Get(kv_pb2.GetRequest(key="hello"))
    assert reply.value == b"world\n\nWritten from plugin-go-grpc"
    assert (tmp_path / "kv_hello").is_file()


@pytest.mark.interop
@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
@pytest.mark.parametrize("which", ["counterplugin", "upstream_counter_plugin"])
async def test_go_counter_plugin_calls_back_through_broker(
    go: GoBinaries, tmp_path: Path, mtls: bool, mux: bool, which: str
) -> None:
    cfg = _config([str(getattr(go, which))], tmp_path, auto_mtls=mtls, multiplex=mux)
    async with PluginClient(cfg) as client:
        counter = client.dispense("counter")
        await counter.put("n", 3)
        await counter.put("n", 4)
        assert await counter.get("n") == 7


@pytest.mark.interop
async def test_go_plugin_dies_mid_call(go: GoBinaries, tmp_path: Path) -> None:
    async with PluginClient(_config([str(go.kvplugin)], tmp_path)) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="fine", value=b"1"))
        with pytest.raises(PluginExitedError) as info:
            await kv.Put(kv_pb2.PutRequest(key="crash", value=b"1"))
        assert info.value.returncode == 3
        assert client.exited
    # The host keeps running: a new plugin works.
    async with PluginClient(_config([str(go.kvplugin)], tmp_path)) as client:
        await _kv_roundtrip(client)


@pytest.mark.interop
async def test_reattach_to_running_go_plugin(go: GoBinaries, tmp_path: Path) -> None:
    first = PluginClient(_config([str(go.kvplugin)], tmp_path))
    await first.start()
    try:
        kv = first.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="kept", value=b"state"))
        rc = first.reattach_config()
        assert rc is not None and rc.pid == first.pid and rc.protocol == "grpc"
        second = PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS, reattach=rc))
        await second.start()
        value = await second.dispense("kv_grpc").Get(kv_pb2.GetRequest(key="kept"))
        assert value.value == b"state"
        await second.aclose()
        assert await first.wait_exited(5)
    finally:
        await first.aclose()


@pytest.mark.interop
async def test_secure_config(go: GoBinaries, tmp_path: Path) -> None:
    binary = go.kvplugin
    good = SecureConfig(hashlib.sha256(binary.read_bytes()).digest())
    async with PluginClient(_config([str(binary)], tmp_path, secure_config=good)) as client:
        await client.ping()
    bad = SecureConfig(hashlib.sha256(b"something else").digest())
    client = PluginClient(_config([str(binary)], tmp_path, secure_config=bad))
    with pytest.raises(ChecksumMismatchError) as info:
        await client.start()
    assert info.value.step == "secure config"
    assert client.pid is None  # refused before launch


# -- Python host <-> Python plugin ------------------------------------------------


@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_stdout_written_just_before_shutdown_reaches_the_host(
    tmp_path: Path, mtls: bool
) -> None:
    """The plugin exits right after Shutdown, but not before its GRPCStdio stream has
    sent what the plugin wrote: the host closes at once after a call that printed."""
    for round_ in range(5):
        out, err = io.BytesIO(), io.BytesIO()
        cfg = _config(KV_PLUGIN, tmp_path, auto_mtls=mtls, sync_stdout=out, sync_stderr=err)
        async with PluginClient(cfg) as client:
            await client.dispense("kv_grpc").Put(kv_pb2.PutRequest(key=f"k{round_}", value=b"v"))
        assert client.process is not None and client.process.returncode == 0
        assert out.getvalue() == f"kv stdout: put k{round_}\n".encode(), round_
        assert f"put k{round_}".encode() in err.getvalue(), round_


async def test_automtls_plugin_announces_a_p256_certificate(tmp_path: Path) -> None:
    """The host makes a P-521 certificate as go-plugin's does; a plugwire plugin answers
    with a P-256 one (plugwire.grpc.mtls.PLUGIN_CURVE: cheaper in every handshake), and
    the host verifies it and talks to the plugin."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    async with PluginClient(_config(KV_PLUGIN, tmp_path, auto_mtls=True)) as client:
        await _kv_roundtrip(client)
        assert client._announce is not None and client._announce.server_cert is not None
        announced = x509.load_der_x509_certificate(client._announce.server_cert).public_key()
        assert client._own_cert is not None
        own = x509.load_pem_x509_certificate(client._own_cert.cert_pem).public_key()
    assert isinstance(announced, ec.EllipticCurvePublicKey)
    assert announced.curve.name == "secp256r1"
    assert isinstance(own, ec.EllipticCurvePublicKey) and own.curve.name == "secp521r1"


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_python_kv_plugin(tmp_path: Path, mtls: bool, mux: bool) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    cfg = _config(
        KV_PLUGIN, tmp_path, auto_mtls=mtls, multiplex=mux, sync_stdout=out, sync_stderr=err
    )
    async with PluginClient(cfg) as client:
        await _kv_roundtrip(client)
        await _wait_for(out, b"put beta")
        await _wait_for(err, b"put beta")
        with pytest.raises(RemoteError) as info:
            await client.dispense("kv_grpc").Get(kv_pb2.GetRequest(key="missing"))
        assert info.value.code == 5  # NOT_FOUND
    assert out.getvalue() == b"kv stdout: put alpha\nkv stdout: put beta\n"
    assert client.exited
    assert client.process is not None and client.process.returncode == 0  # exited on its own


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
async def test_python_counter_plugin(tmp_path: Path, mtls: bool, mux: bool) -> None:
    cfg = _config(COUNTER_PLUGIN, tmp_path, auto_mtls=mtls, multiplex=mux)
    async with PluginClient(cfg) as client:
        counter = client.dispense("counter")
        for n in (1, 2, 3):
            await counter.put("c", n)
        assert await counter.get("c") == 6


async def test_dispense_unknown_name(tmp_path: Path) -> None:
    async with PluginClient(_config(KV_PLUGIN, tmp_path)) as client:
        with pytest.raises(ConfigError) as info:
            client.dispense("nope")
        assert "kv_grpc" in str(info.value.expected)


async def test_reattach_python_plugin_then_kill(tmp_path: Path) -> None:
    first = PluginClient(_config(KV_PLUGIN, tmp_path))
    await first.start()
    try:
        rc = first.reattach_config()
        assert rc is not None
        again = ReattachConfig(protocol_version=rc.protocol_version, address=rc.address, pid=rc.pid)
        second = PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS, reattach=again))
        await second.start()
        await second.ping()
        await second.aclose()
        assert await first.wait_exited(5)
        assert first.process is not None and first.process.returncode == 0
    finally:
        await first.aclose()


def test_client_config_errors() -> None:
    with pytest.raises(ConfigError):
        PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS))
    with pytest.raises(ConfigError):
        PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS, cmd=[]))


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
@pytest.mark.parametrize("network", ["unix", "tcp"])
async def test_plugin_accepts_host_dials(
    tmp_path: Path, mtls: bool, mux: bool, network: str
) -> None:
    """Broker in the reverse direction; also the plugin on TCP within the port range."""
    from goplugin_support import plugin_script

    from plugwire.grpc.goplugin.examples import counter_pb2, counter_pb2_grpc

    cfg = _config(
        plugin_script("reverse_broker.py"),
        tmp_path,
        auto_mtls=mtls,
        multiplex=mux,
        min_port=23000,
        max_port=23999,
        env={"NETWORK": network},
    )
    async with PluginClient(cfg) as client:
        assert client.address is not None and client.address.network == network
        if network == "tcp":
            assert 23000 <= int(client.address.address.rpartition(":")[2]) <= 23999
        stub = counter_pb2_grpc.CounterStub(client.channel)
        for a, b in ((2, 3), (40, 2)):
            reply = await stub.Get(counter_pb2.GetRequest(key="x"))
            channel = await client.broker.dial(reply.value)
            async with channel:
                total = await counter_pb2_grpc.AddHelperStub(channel).Sum(
                    counter_pb2.SumRequest(a=a, b=b), timeout=10
                )
            assert total.r == a + b


async def test_broker_dial_of_unknown_id_times_out(tmp_path: Path) -> None:
    from plugwire.core.errors import PluginTimeoutError

    async with PluginClient(_config(KV_PLUGIN, tmp_path)) as client:
        with pytest.raises(PluginTimeoutError) as info:
            await client.broker.dial(99, timeout=0.3)
        assert info.value.step == "broker dial 99"


async def test_user_tls_config_both_sides(tmp_path: Path) -> None:
    from goplugin_support import plugin_script

    from plugwire.grpc import TLSConfig, generate_cert

    plugin_cert, host_cert = generate_cert(), generate_cert()
    env = {
        "TLS_CERT": plugin_cert.cert_pem.decode(),
        "TLS_KEY": plugin_cert.key_pem.decode(),
        "TLS_PEER": host_cert.cert_pem.decode(),
    }
    cfg = _config(
        plugin_script("user_tls_kv.py"),
        tmp_path,
        env=env,
        tls=TLSConfig.mutual(host_cert, plugin_cert.cert_pem),
    )
    async with PluginClient(cfg) as client:
        await _kv_roundtrip(client)
    # A host presenting another certificate is refused by the plugin.
    stranger = generate_cert()
    cfg = _config(
        plugin_script("user_tls_kv.py"),
        tmp_path,
        env=env,
        tls=TLSConfig.mutual(stranger, plugin_cert.cert_pem),
    )
    # start() checks the plugin answers (issue 20 item 7): the refusal shows there.
    with pytest.raises(PlugwireError, match="does not answer"):
        async with PluginClient(cfg):
            pass


async def test_managed_clients_are_cleaned_up(tmp_path: Path) -> None:
    from plugwire.grpc.goplugin import cleanup_clients

    clients = [PluginClient(_config(KV_PLUGIN, tmp_path, managed=True)) for _ in range(2)]
    for client in clients:
        await client.start()
    await cleanup_clients()
    assert all(c.exited for c in clients)


async def test_command_name_is_looked_up_in_the_host_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    name = os.path.basename(sys.executable)
    cfg = _config([name, "-m", "plugwire.grpc.goplugin.examples.kv"], tmp_path)
    async with PluginClient(cfg) as client:
        await client.ping()
