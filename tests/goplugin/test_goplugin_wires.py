"""Wire negotiation inside the go-plugin handshake: ttrpc between plugwire peers,
plain go-plugin gRPC with Go peers, forcing/refusing, and bad negotiation input."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from goplugin_support import KV_PLUGIN, PY, GoBinaries, plugin_script, run_go_host

from plugwire.core.errors import (
    ConfigError,
    HandshakeError,
    PluginExitedError,
    PlugwireError,
    ProtocolError,
    RemoteError,
)
from plugwire.core.status import StatusCode
from plugwire.grpc.goplugin import (
    ClientConfig,
    GrpcPlugin,
    PluginClient,
    PluginEnv,
    ServeConfig,
    ServicePlugin,
    UnsupportedProtocolError,
    serve_async,
)
from plugwire.grpc.goplugin._launch import child_env
from plugwire.grpc.goplugin.errors import NegotiationError, WireMismatchError
from plugwire.grpc.goplugin.examples import (
    HANDSHAKE,
    counter_pb2,
    counter_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
)
from plugwire.grpc.goplugin.examples.counter import AddHelperServicer
from plugwire.grpc.goplugin.examples.kv import KVPlugin
from plugwire.grpc.goplugin.wires import host_offer, parse_wires

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WIRES_PLUGIN = [PY, str(ROOT / "docs" / "examples" / "goplugin" / "wires" / "plugin.py")]
KV_SERVICE = kv_pb2.DESCRIPTOR.services_by_name["KV"]
COUNTER = counter_pb2.DESCRIPTOR.services_by_name["Counter"]


def _kv_config(cmd: Sequence[str], **kw: Any) -> ClientConfig:
    base: dict[str, Any] = {
        "handshake": HANDSHAKE,
        "plugins": {"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub, service=KV_SERVICE)},
        "cmd": list(cmd),
        "start_timeout": 30,
    }
    base.update(kw)
    return ClientConfig(**base)


async def _put_get(client: PluginClient) -> None:
    kv = client.dispense("kv_grpc")
    await kv.Put(kv_pb2.PutRequest(key="k", value=b"v"))
    # (go-plugin's Go KV plugin appends "\n\nWritten from plugin-go-grpc")
    assert (await kv.Get(kv_pb2.GetRequest(key="k"))).value.startswith(b"v")


# -- python host <-> python plugin ------------------------------------------------


async def test_plugwire_pair_negotiates_ttrpc_and_everything_works() -> None:
    out = io.BytesIO()
    client = PluginClient(_kv_config(WIRES_PLUGIN, sync_stdout=out))
    await client.start()
    try:
        assert client.protocol == "ttrpc"
        assert client.ttrpc_client is not None
        with pytest.raises(ConfigError) as info:
            _ = client.channel  # no gRPC connection on this wire
        assert info.value.seen == "ttrpc"
        await _put_get(client)
        kv = client.dispense("kv_grpc")
        with pytest.raises(RemoteError) as err:
            await kv.Get(kv_pb2.GetRequest(key="missing"))
        assert err.value.code == StatusCode.NOT_FOUND
        await client.ping()
        rc = client.reattach_config()
        assert rc is not None and rc.protocol == "ttrpc"
        # stdio runs over ttrpc too: what the plugin printed reached sync_stdout.
        for _ in range(100):
            if b"plugin stdout: put k" in out.getvalue():
                break
            await _sleep(0.02)
        assert b"plugin stdout: put k" in out.getvalue()
    finally:
        await client.aclose()
    # Controller.Shutdown over ttrpc: the plugin exited on its own, status 0.
    assert client.exited
    assert client.process is not None and client.process.returncode == 0


async def test_refusing_ttrpc_gives_plain_goplugin_grpc() -> None:
    cfg = _kv_config(WIRES_PLUGIN, wires=("grpc",))
    env, socket_dir, _ = child_env(cfg, host_offer(cfg, peer="t"))
    os.rmdir(socket_dir)
    assert "PLUGWIRE_WIRES" not in env  # nothing but go-plugin's own variables
    async with PluginClient(cfg) as client:
        assert client.protocol == "grpc"
        await _put_get(client)
        await client.ping()


async def test_grpc_only_plugin_set_answers_grpc_to_the_offer(tmp_path: Path) -> None:
    # The bundled KV plugin registers through generated code only: it cannot serve
    # ttrpc, so it answers grpc even though this host offers ttrpc.
    cfg = _kv_config(KV_PLUGIN, env={"KV_DIR": str(tmp_path)})
    assert host_offer(cfg, peer="t") == ("ttrpc", "grpc")
    async with PluginClient(cfg) as client:
        assert client.protocol == "grpc"
        await _put_get(client)


async def test_broker_keeps_working_over_ttrpc(tmp_path: Path) -> None:
    from plugwire.ttrpc import ServiceClient

    class TtrpcCounter(GrpcPlugin):
        wires = ("grpc", "ttrpc")

        def ttrpc_client(self, broker: Any, client: Any) -> Any:
            return broker, ServiceClient(client, COUNTER)

    cfg = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"counter": TtrpcCounter()},
        cmd=plugin_script("wire_counter.py"),
        env={"KV_DIR": str(tmp_path)},
        start_timeout=30,
    )
    async with PluginClient(cfg) as client:
        assert client.protocol == "ttrpc"
        broker, counter = client.dispense("counter")
        for value in (3, 4):
            broker_id = broker.next_id()
            server = await broker.accept(
                broker_id,
                lambda s: counter_pb2_grpc.add_AddHelperServicer_to_server(AddHelperServicer(), s),
            )
            async with server:
                await counter.Put(
                    counter_pb2.PutRequest(add_server=broker_id, key="n", value=value)
                )
        assert (await counter.Get(counter_pb2.GetRequest(key="n"))).value == 7


# -- forcing and refusing ---------------------------------------------------------


async def test_forcing_ttrpc_against_a_go_plugin_fails_the_handshake(go: GoBinaries) -> None:
    cfg = _kv_config([str(go.upstream_kv_plugin)], wires=("ttrpc",))
    client = PluginClient(cfg)
    with pytest.raises(UnsupportedProtocolError) as info:
        await client.start()
    assert isinstance(info.value, HandshakeError)
    assert info.value.step == "announce" and info.value.seen == "grpc"
    assert "ttrpc" in str(info.value.expected)
    assert client.exited or client.pid is None
    await _host_still_works()


async def test_go_plugin_gets_grpc_from_a_plugwire_host(go: GoBinaries, tmp_path: Path) -> None:
    cfg = _kv_config([str(go.upstream_kv_plugin)], cwd=str(tmp_path))
    assert "ttrpc" in host_offer(cfg, peer="t")  # offered; the Go plugin ignores it
    async with PluginClient(cfg) as client:
        assert client.protocol == "grpc"
        await _put_get(client)


def test_go_host_sees_plain_goplugin_from_a_ttrpc_capable_plugin(
    go: GoBinaries, tmp_path: Path
) -> None:
    report = run_go_host(go.kvhost, WIRES_PLUGIN, ops="put:a:one,get:a,ping")
    assert report["ok"], report.get("error")
    assert report["results"] == ["ok", "one", "pong"]
    assert report["kill_graceful"] is True


async def test_forcing_ttrpc_where_it_cannot_run_is_a_config_error() -> None:
    for kw in ({"auto_mtls": True}, {"multiplex": True}):
        cfg = _kv_config(WIRES_PLUGIN, wires=("ttrpc",), **kw)
        with pytest.raises(ConfigError) as info:
            await PluginClient(cfg).start()
        assert info.value.step == "negotiate wire"
    grpc_only = ClientConfig(
        handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()}, cmd=WIRES_PLUGIN, wires=("ttrpc",)
    )
    with pytest.raises(ConfigError):
        await PluginClient(grpc_only).start()
    with pytest.raises(ConfigError):
        ClientConfig(handshake=HANDSHAKE, wires=("quic",))


async def test_automtls_keeps_the_pair_on_grpc() -> None:
    cfg = _kv_config(WIRES_PLUGIN, auto_mtls=True)
    assert host_offer(cfg, peer="t") == ("grpc",)
    async with PluginClient(cfg) as client:
        assert client.protocol == "grpc"
        await _put_get(client)


# -- bad input --------------------------------------------------------------------


async def _start_fails(cfg: ClientConfig) -> PlugwireError:
    client = PluginClient(cfg)
    with pytest.raises(PlugwireError) as info:
        await client.start()
    assert client.pid is None or client.exited
    return info.value


async def _host_still_works() -> None:
    async with PluginClient(_kv_config(WIRES_PLUGIN)) as client:
        assert client.protocol == "ttrpc"
        await _put_get(client)


@pytest.mark.parametrize(
    ("protocol", "error", "expected_part"),
    [
        ("quic", UnsupportedProtocolError, "ttrpc"),
        ("TT RPC", NegotiationError, "wire name"),
        ("", NegotiationError, "wire name"),
        ("ttrpc;v=2", NegotiationError, "wire name"),
    ],
)
async def test_bad_protocol_answer_is_typed(
    protocol: str, error: type[PlugwireError], expected_part: str
) -> None:
    cfg = _kv_config(
        plugin_script("raw_announce.py"),
        env={"RAW_ANNOUNCE": f"1|1|unix|/nonexistent/p|{protocol}|"},
    )
    exc = await _start_fails(cfg)
    assert isinstance(exc, error)
    assert isinstance(exc, HandshakeError)
    assert exc.peer and exc.step and expected_part in str(exc.expected)
    assert exc.seen == (protocol or "(empty)")
    await _host_still_works()


async def test_ttrpc_answer_without_an_offer_is_refused() -> None:
    cfg = _kv_config(
        plugin_script("raw_announce.py"),
        wires=("grpc",),
        env={"RAW_ANNOUNCE": "1|1|unix|/nonexistent/p|ttrpc|"},
    )
    exc = await _start_fails(cfg)
    assert isinstance(exc, UnsupportedProtocolError)
    assert exc.seen == "ttrpc" and "grpc" in str(exc.expected)


@pytest.mark.parametrize(("lie", "step"), [("ttrpc", "connect ttrpc"), ("grpc", "connect grpc")])
async def test_endpoint_speaking_the_other_wire_is_a_protocol_error(lie: str, step: str) -> None:
    exc = await _start_fails(_kv_config(plugin_script("wrong_wire.py"), env={"LIE": lie}))
    assert isinstance(exc, WireMismatchError)
    assert isinstance(exc, ProtocolError)
    assert exc.peer and exc.step == step and exc.expected and exc.seen
    assert not isinstance(exc, PluginExitedError)
    await _host_still_works()


def test_wire_offer_parsing() -> None:
    assert parse_wires("ttrpc,grpc") == ("ttrpc", "grpc")
    assert parse_wires(" ttrpc , quic ,grpc") == ("ttrpc", "quic", "grpc")  # unknown kept
    for bad in ("", ",", "ttrpc,,grpc", "TTRPC", "tt rpc", "ttrpc;grpc"):
        with pytest.raises(NegotiationError) as info:
            parse_wires(bad, peer="host")
        assert info.value.step == "PLUGWIRE_WIRES" and info.value.expected
    # The plugin side: no offer (a Go host), an offer, and an offer that does not
    # parse (ignored: the plugin stays reachable over plain gRPC).
    assert PluginEnv.from_env({}).wires == ()
    assert PluginEnv.from_env({"PLUGWIRE_WIRES": "ttrpc,grpc"}).wires == ("ttrpc", "grpc")
    assert PluginEnv.from_env({"PLUGWIRE_WIRES": "ttrpc,,grpc"}).wires == ()


async def _announced(environ: dict[str, str], config: ServeConfig) -> str:
    """Run serve_async in-process with ``environ``; return the protocol field it announced."""
    out = io.StringIO()
    stop = asyncio.Event()
    env = {**HANDSHAKE.cookie_env(), "PLUGIN_PROTOCOL_VERSIONS": "1", **environ}
    task = asyncio.ensure_future(serve_async(config, environ=env, stdout=out, stop=stop))
    for _ in range(500):
        if out.getvalue().endswith("\n"):
            break
        await asyncio.sleep(0.01)
    stop.set()
    assert await task == 0
    return out.getvalue().split("|")[4]


async def test_plugin_side_choice(tmp_path: Path) -> None:
    portable = ServeConfig(
        handshake=HANDSHAKE,
        plugins={"kv": ServicePlugin(servicer=object(), service=KV_SERVICE)},
        configure_logging=False,
        sync_stdio=False,
    )
    sockets = {"PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)}
    assert await _announced(sockets, portable) == "grpc"  # no offer: a Go host
    assert await _announced({**sockets, "PLUGWIRE_WIRES": "ttrpc,grpc"}, portable) == "ttrpc"
    # The host's preference order decides; unknown wires are skipped.
    assert await _announced({**sockets, "PLUGWIRE_WIRES": "quic,grpc,ttrpc"}, portable) == "grpc"
    # An offer that does not parse is ignored: plain gRPC.
    assert await _announced({**sockets, "PLUGWIRE_WIRES": "ttrpc,,grpc"}, portable) == "grpc"
    # The plugin may refuse ttrpc.
    refusing = attrs.evolve(portable, wires=("grpc",))
    assert await _announced({**sockets, "PLUGWIRE_WIRES": "ttrpc,grpc"}, refusing) == "grpc"
    # A multiplexing host gets gRPC.
    mux = {**sockets, "PLUGWIRE_WIRES": "ttrpc,grpc", "PLUGIN_MULTIPLEX_GRPC": "true"}
    assert await _announced(mux, portable) == "grpc"
    # A plugin set with a gRPC-only plugin answers grpc.
    mixed = attrs.evolve(portable, plugins={"kv": KVPlugin(), "portable": portable.plugins["kv"]})
    assert await _announced({**sockets, "PLUGWIRE_WIRES": "ttrpc,grpc"}, mixed) == "grpc"


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


async def test_reattach_reconnects_over_ttrpc() -> None:
    async with PluginClient(_kv_config(WIRES_PLUGIN)) as first:
        rc = first.reattach_config()
        assert rc is not None and rc.protocol == "ttrpc"
        await first.dispense("kv_grpc").Put(kv_pb2.PutRequest(key="shared", value=b"1"))
        config = ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub, service=KV_SERVICE)},
            reattach=attrs.evolve(rc, test=True),
        )
        second = PluginClient(config)
        await second.start()
        try:
            assert second.protocol == "ttrpc"
            kv = second.dispense("kv_grpc")
            assert (await kv.Get(kv_pb2.GetRequest(key="shared"))).value == b"1"
        finally:
            # A test reattach is not ours to kill: only the Shutdown RPC (over ttrpc)
            # is sent, and the plugin stops by itself.
            await second.aclose()
        assert await first.wait_exited(10)
        assert first.process is not None and first.process.returncode == 0
