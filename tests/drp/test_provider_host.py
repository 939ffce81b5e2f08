"""ProviderPlugin as a core plugin handle and ProviderHost on a core Host: capabilities
through the controller, one shutdown sequence (/stop, grace, SIGTERM, SIGKILL), a
plain core Host and the blocking façade (both backends where async)."""

from __future__ import annotations

import signal
import time

import anyio
import pytest
from drp_support import (  # type: ignore[import-not-found,unused-ignore]
    EXAMPLE,
    PROVIDERS,
    TOKEN,
    python_provider,
)

from plugwire.core.blocking import BlockingHost
from plugwire.core.controller import CapabilityDeniedError
from plugwire.core.errors import ConfigError
from plugwire.core.handle import BasePluginHandle, PluginHandle
from plugwire.core.host import Host
from plugwire.core.managed import live_plugins
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.core.transport import Address
from plugwire.http import HttpClient
from plugwire.http.drp import (
    DRP_CAPABILITIES,
    DRP_SHUTDOWN,
    SERVER_API,
    ProviderError,
    ProviderHost,
    ProviderPlugin,
)

pytestmark = [pytest.mark.drp]

FEATURES = python_provider(PROVIDERS / "features.py")


def test_provider_plugin_is_a_core_handle() -> None:
    plugin = ProviderPlugin(FEATURES, token="t")
    assert isinstance(plugin, BasePluginHandle) and isinstance(plugin, PluginHandle)
    assert plugin.family == "drp" and plugin.name == "features.py"
    assert plugin.shutdown == DRP_SHUTDOWN == ShutdownPolicy(grace=5.0, term_grace=2.0)
    assert sorted(plugin.controller) == sorted(DRP_CAPABILITIES)
    only_log = ProviderPlugin(FEATURES, grant=["log"])
    assert list(only_log.controller) == ["log"]
    with pytest.raises(ConfigError, match="unknown dr-provision capabilities"):
        ProviderPlugin(FEATURES, grant=["publish", "reboot"])


@pytest.mark.anyio
async def test_denied_capability_is_a_403_naming_plugin_and_capability(
    provider_env: dict[str, str],
) -> None:
    async with ProviderPlugin(
        FEATURES,
        name="features",
        token="t",
        env=provider_env,
        grant=["log"],
        objects={"cows": [{"Name": "bessie"}]},
    ) as plugin:
        with pytest.raises(CapabilityDeniedError) as typed:
            plugin.controller.require("publish")
        denial = str(typed.value)
        assert "'features'" in denial and "'publish'" in denial
        # chatter publishes an event: the provider's /publish gets a 403 whose
        # message is the typed denial, and passes that error back as its answer
        with pytest.raises(ProviderError) as info:
            await plugin.action("chatter", params={"n": 1})
        assert info.value.code == 403
        assert any(denial in message for message in info.value.error.messages)
        assert plugin.events == []
        # objects: denied on the server API itself
        assert plugin.socket_dir is not None
        sock = Address("unix", str(plugin.socket_dir / "from.sock"))
        async with HttpClient(sock) as client:
            reply = await client.get(f"{SERVER_API}/objects/cows")
            assert reply.status == 403
            doc = reply.decode_json()
            assert doc["Code"] == 403 and doc["Key"] == f"{SERVER_API}/objects/cows"
            assert "plugin 'features' may not use 'objects'" in doc["Messages"][0]
            # granted: log
            logged = await client.post_json(f"{SERVER_API}/log", {"Message": "hi", "Level": "info"})
            assert logged.status == 200
        # the host and the provider keep running
        assert plugin.running
        assert (await plugin.action("env"))["token"] == "t"
        assert any(line.message == "hi" for line in plugin.logs)
        await plugin.aclose()
        assert plugin.returncode == 0


@pytest.mark.anyio
async def test_provider_host_launches_and_closes_through_core_host(
    provider_env: dict[str, str],
) -> None:
    async with ProviderHost(
        endpoint="https://drp.example:8092", token="tok", env=provider_env
    ) as drp:
        one = await drp.launch(FEATURES, name="one")
        two = await drp.launch(ProviderPlugin(FEATURES, name="two", token="own", env=provider_env))
        assert isinstance(drp.host, Host) and set(drp.host.plugins) == {"one", "two"}
        assert drp["one"] is one and set(drp.plugins) == {"one", "two"}
        assert one in live_plugins(ProviderPlugin) and two in live_plugins(ProviderPlugin)
        env_one = await one.action("env")
        assert (env_one["endpoint"], env_one["token"]) == ("https://drp.example:8092", "tok")
        assert (await two.action("env"))["token"] == "own"
        with pytest.raises(ConfigError):
            await drp.launch(FEATURES, name="one")  # names are unique
        with pytest.raises(ConfigError, match="options are for a command"):
            await drp.launch(ProviderPlugin(FEATURES, name="three"), token="x")
        await drp.close("one")
        assert one.closed and one.returncode == 0 and one.error is None
        assert set(drp.plugins) == {"two"}
        # /leaving closes the provider by itself; its name is free again
        assert await two.action("leave") == "bye"
        with anyio.fail_after(10):
            await two.left.wait()
            assert await two.wait() == 0
        assert "two" not in drp.plugins
        again = await drp.launch(FEATURES, name="two")
        assert again.running
    assert again.closed and again.returncode == 0
    assert again not in live_plugins(ProviderPlugin)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "status"),
    [("hang", -signal.SIGTERM), ("hang-and-ignore-sigterm", -signal.SIGKILL)],
)
async def test_provider_ignoring_stop_is_killed_within_the_policy(
    provider_env: dict[str, str], mode: str, status: int
) -> None:
    policy = ShutdownPolicy(grace=0.5, term_grace=0.5)
    async with Host("drp", shutdown=policy) as host:
        plugin = await host.launch(
            ProviderPlugin(
                FEATURES, token="t", env={**provider_env, "FEATURES_STOP": mode}, shutdown=policy
            )
        )
        start = time.monotonic()
        await host.close(plugin)
        took = time.monotonic() - start
    assert plugin.returncode == status
    assert took < policy.bound + 2.0, took
    assert plugin.error is None  # asked to stop, so not an error


def test_blocking_host_launches_the_example_provider() -> None:
    with BlockingHost("drp") as host:
        incr = host.launch(ProviderPlugin(python_provider(EXAMPLE), token=TOKEN))
        assert incr.definition.name == "incrementer"
        incr.config({})
        assert incr.action("incrstatus") == "Running"
        assert incr.running
        host.close(incr.handle)
        assert incr.handle.returncode == 0
