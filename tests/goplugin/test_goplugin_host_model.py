"""PluginClient as a core plugin handle: Host, BlockingHost, managed registry,
controller capabilities, and go-plugin's environment parsed once."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from goplugin_support import COUNTER_PLUGIN, KV_PLUGIN

from plugwire.core import managed
from plugwire.core.blocking import BlockingHost
from plugwire.core.controller import CapabilityDeniedError, Controller
from plugwire.core.errors import RemoteError
from plugwire.core.handle import PluginHandle
from plugwire.core.host import Host
from plugwire.grpc.goplugin import (
    BROKER,
    ClientConfig,
    EnvValueError,
    PluginClient,
    PluginEnv,
    ReattachConfig,
    cleanup_clients,
)
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.counter import CounterPlugin
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = [pytest.mark.anyio, pytest.mark.goplugin]

PLUGINS = {"kv_grpc": KVPlugin(), "counter": CounterPlugin()}


def _config(cmd: Sequence[str], tmp_path: Path, **kw: object) -> ClientConfig:
    base: dict[str, object] = {
        "handshake": HANDSHAKE,
        "plugins": PLUGINS,
        "cmd": list(cmd),
        "env": {"KV_DIR": str(tmp_path), "COUNTER_DIR": str(tmp_path)},
        "start_timeout": 30,
    }
    base.update(kw)
    return ClientConfig(**base)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


# -- the handle ------------------------------------------------------------------


async def test_plugin_client_is_a_core_handle(tmp_path: Path) -> None:
    client = PluginClient(_config(KV_PLUGIN, tmp_path, kill_grace=3))
    assert isinstance(client, PluginHandle)
    assert client.family == "goplugin"
    assert client.shutdown.grace == 3
    assert client.controller.require(BROKER)
    assert not hasattr(client, "kill")


async def test_core_host_launches_and_closes_plugin_client(tmp_path: Path) -> None:
    async with Host("node") as host:
        client = await host.launch(PluginClient(_config(KV_PLUGIN, tmp_path, name="kv")))
        assert host.plugins == {"kv": client}
        assert client in managed.live_plugins(PluginClient)
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="k", value=b"v"))
        assert (await kv.Get(kv_pb2.GetRequest(key="k"))).value == b"v"
        await host.close("kv")
        assert client.closed and client.exited
        assert client.process is not None and client.process.returncode == 0  # Shutdown RPC
        assert "kv" not in host.plugins
        again = await host.launch(PluginClient(_config(KV_PLUGIN, tmp_path, name="kv")))
        await again.ping()
    assert again.closed and again.exited
    assert client not in managed.live_plugins(PluginClient)


def test_blocking_host_with_kv_example(tmp_path: Path) -> None:
    with BlockingHost("blocking") as host:
        client = host.launch(PluginClient(_config(KV_PLUGIN, tmp_path, name="kv")))
        client.ping()  # a coroutine method, called plainly
        kv = host.wrap(client.dispense("kv_grpc"))
        kv.Put(kv_pb2.PutRequest(key="plain", value=b"call"))
        assert kv.Get(kv_pb2.GetRequest(key="plain")).value == b"call"
        handle = client.handle
    assert handle.closed and handle.exited


async def test_cleanup_clients_uses_core_registry(tmp_path: Path) -> None:
    clients = [PluginClient(_config(KV_PLUGIN, tmp_path, name=f"kv{i}")) for i in range(2)]
    for client in clients:
        await client.start()  # go-plugin style: no task group
    assert set(managed.live_plugins(PluginClient)) >= set(clients)
    await cleanup_clients()
    assert all(c.closed and c.exited for c in clients)
    assert not set(managed.live_plugins(PluginClient)) & set(clients)


async def test_kill_now_kills_a_reattached_pid(tmp_path: Path) -> None:
    first = PluginClient(_config(KV_PLUGIN, tmp_path, name="first"))
    await first.start()
    try:
        rc = first.reattach_config()
        assert rc is not None and rc.pid is not None
        second = PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS, reattach=rc))
        await second.start()
        assert second.process is None and second.pid == rc.pid
        second.kill_now()
        assert await first.wait_exited(5)
        assert first.process is not None and first.process.returncode == -signal.SIGKILL
        await second.aclose()
    finally:
        await first.aclose()


async def test_kill_now_spares_a_test_reattach(tmp_path: Path) -> None:
    async with PluginClient(_config(KV_PLUGIN, tmp_path, name="first")) as first:
        rc = first.reattach_config()
        assert rc is not None and rc.pid is not None
        test_rc = ReattachConfig(
            protocol_version=rc.protocol_version, address=rc.address, pid=rc.pid, test=True
        )
        second = PluginClient(ClientConfig(handshake=HANDSHAKE, plugins=PLUGINS, reattach=test_rc))
        await second.start()
        second.kill_now()
        await anyio.sleep(0.2)
        assert _alive(rc.pid)
        await first.ping()
        await second.aclose()


# -- the broker capability ---------------------------------------------------------


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
async def test_broker_dial_refused_without_capability(tmp_path: Path, mux: bool) -> None:
    denied = Controller("counter-host")  # no "broker"
    cfg = _config(COUNTER_PLUGIN, tmp_path, multiplex=mux, controller=denied, name="counter")
    async with PluginClient(cfg) as client:
        assert client.controller is denied
        with pytest.raises(CapabilityDeniedError) as expected:
            denied.require(BROKER)
        counter = client.dispense("counter")
        # The plugin dials the host's AddHelper through the broker: refused.
        with pytest.raises(RemoteError) as info:
            await counter.put("c", 1)
        assert "PERMISSION_DENIED" in str(info.value)
        assert str(expected.value) in str(info.value)
        assert "'counter-host'" in str(info.value) and "'broker'" in str(info.value)
        # The host keeps running and so does the plugin.
        await client.ping()
        assert await counter.get("c") == 0
    # Granted (the default), the same call works.
    async with PluginClient(_config(COUNTER_PLUGIN, tmp_path, multiplex=mux)) as client:
        await client.dispense("counter").put("c", 2)
        assert await client.dispense("counter").get("c") == 2


# -- go-plugin's environment, parsed once -------------------------------------------


def test_plugin_env_from_env() -> None:
    env = PluginEnv.from_env(
        {
            "PLUGIN_MIN_PORT": "10000",
            "PLUGIN_MAX_PORT": "10010",
            "PLUGIN_UNIX_SOCKET_DIR": "/run/p",
            "PLUGIN_UNIX_SOCKET_GROUP": "wheel",
            "PLUGIN_PROTOCOL_VERSIONS": "1, x,3",
            "PLUGIN_MULTIPLEX_GRPC": "true",
            "PLUGIN_CLIENT_CERT": "PEM",
        }
    )
    assert (env.listen.min_port, env.listen.max_port) == (10000, 10010)
    assert (env.listen.socket_dir, env.listen.socket_group) == ("/run/p", "wheel")
    assert env.protocol_versions == (1, 3)
    assert env.multiplex and env.multiplex_asked
    assert env.client_cert == "PEM"
    empty = PluginEnv.from_env({"PLUGIN_MULTIPLEX_GRPC": "maybe"})
    assert empty.multiplex_asked and not empty.multiplex
    assert empty.listen.socket_dir is None and empty.listen.min_port == 0
    with pytest.raises(AttributeError):
        empty.multiplex = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "variable", "seen"),
    [
        ({"PLUGIN_MIN_PORT": "ten"}, "PLUGIN_MIN_PORT", "ten"),
        ({"PLUGIN_MAX_PORT": "70000"}, "PLUGIN_MAX_PORT", "70000"),
        ({"PLUGIN_MIN_PORT": "20", "PLUGIN_MAX_PORT": "10"}, "PLUGIN_MIN_PORT", 20),
    ],
)
def test_plugin_env_bad_values(environ: dict[str, str], variable: str, seen: object) -> None:
    with pytest.raises(EnvValueError) as info:
        PluginEnv.from_env(environ)
    assert info.value.variable == variable
    assert variable in str(info.value)
    assert info.value.seen == seen
    assert info.value.expected
