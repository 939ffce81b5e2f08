"""CIPD on the core host model: handles, the composed core Host, controllers, blocking.

Real plugin processes throughout (tests/cipd/plugins/modes.py and the bundled
``plugwire.grpc.cipd.example``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from plugwire.core import managed
from plugwire.core.blocking import BlockingHost
from plugwire.core.controller import CapabilityDeniedError, Controller
from plugwire.core.errors import ConfigError, RemoteError
from plugwire.core.handle import BasePluginHandle, PluginHandle
from plugwire.core.host import Host
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.core.status import StatusCode
from plugwire.grpc.cipd import (
    CAPABILITIES,
    DEFAULT_SHUTDOWN,
    AdmissionAbortedError,
    AdmissionDeniedError,
    AdmissionPlugin,
    CipdHost,
    HashAlgo,
    MetadataEntry,
    ObjectRef,
    Pin,
    StaticMetadataSource,
)

URL = "https://cipd.example.com"
IID = "a" * 40
MODES = Path(__file__).parent / "plugins" / "modes.py"
EXAMPLE = [sys.executable, "-m", "plugwire.grpc.cipd.example"]

pytestmark = pytest.mark.anyio


def modes(*args: str) -> list[str]:
    return [sys.executable, str(MODES), *args]


def source() -> StaticMetadataSource:
    return StaticMetadataSource({Pin("meta/yes", IID): [MetadataEntry("allowed", IID)]})


@pytest.fixture
async def host() -> AsyncIterator[CipdHost]:
    async with CipdHost(service_url=URL, metadata=source()) as h:
        yield h


async def test_admission_plugin_is_a_core_handle_tracked_by_the_core_host(
    host: CipdHost,
) -> None:
    plugin = await host.launch(modes("normal"), name="handle")
    assert isinstance(plugin, BasePluginHandle) and isinstance(plugin, PluginHandle)
    assert plugin.family == "cipd" and plugin.peer == "handle"
    assert plugin.shutdown == DEFAULT_SHUTDOWN and DEFAULT_SHUTDOWN.grace == 5.0
    assert sorted(plugin.controller) == sorted(CAPABILITIES) == ["log", "metadata"]
    assert host.host.plugins["handle"] is plugin and host.plugins == {"handle": plugin}
    assert plugin.started and plugin.process is None  # lazy: no process yet
    await plugin.check(Pin("good/x", IID))
    assert plugin in managed.live_plugins(AdmissionPlugin)
    process = plugin.process
    assert process is not None and process.running
    await plugin.aclose()
    assert plugin.closed and process.returncode == 0  # stdin EOF was enough
    assert "handle" not in host.host.plugins  # a plugin closed by itself is forgotten
    assert plugin not in managed.live_plugins(AdmissionPlugin)
    # Its name is free again; an explicit name in use is refused.
    again = await host.launch(modes("normal"), name="handle")
    with pytest.raises(ConfigError, match="already tracked"):
        await host.launch(modes("normal"), name="handle")
    await again.check(Pin("good/y", IID))


async def test_plugin_without_metadata_capability_is_permission_denied(
    host: CipdHost, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = await host.launch(modes("normal"), name="no-meta", capabilities=("log",))
    assert list(plugin.controller) == ["log"]
    with pytest.raises(CapabilityDeniedError):
        plugin.controller.require("metadata")
    with (
        caplog.at_level(logging.WARNING, logger="plugwire.grpc.cipd"),
        pytest.raises(RemoteError) as info,
    ):
        await plugin.check(Pin("meta/yes", IID), timeout=20)
    # The plugin's visit_metadata got PermissionDenied and answered with it.
    assert not isinstance(info.value, AdmissionDeniedError)
    assert info.value.code == StatusCode.PERMISSION_DENIED
    assert info.value.message == "plugin 'no-meta' may not use 'metadata'"
    refused = [r.getMessage() for r in caplog.records if "refused a call" in r.getMessage()]
    assert refused and "'no-meta'" in refused[0] and "'metadata'" in refused[0]
    # The host and the plugin keep running; a plugin granted metadata gets it.
    await plugin.check(Pin("good/after", IID), timeout=20)
    granted = await host.launch(modes("normal"), name="with-meta")
    await granted.check(Pin("meta/yes", IID), timeout=20)


async def test_plugin_without_log_capability_keeps_its_logs_out(
    host: CipdHost, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = await host.launch(modes("normal"), name="mute", capabilities=("metadata",))
    with caplog.at_level(logging.DEBUG):
        assert await plugin.is_admitted(Pin("bad/logged", IID)) is False
        await plugin.check(Pin("meta/yes", IID), timeout=20)  # metadata still works
    assert not any(
        r.name == "plugwire.plugin.mute" and "rejecting" in r.getMessage() for r in caplog.records
    )
    assert any("'mute' may not use 'log'" in r.getMessage() for r in caplog.records)


async def test_unknown_capability_and_unlaunched_handle(host: CipdHost) -> None:
    with pytest.raises(ConfigError, match="unknown CIPD plugin capability 'admin'"):
        await host.launch(modes("normal"), capabilities=("log", "admin"))
    loose = AdmissionPlugin(host, modes("normal"), name="loose")
    with pytest.raises(ConfigError, match=r"start it with Host\.launch"):
        loose.check_admission(Pin("good/x", IID))
    custom = AdmissionPlugin(
        host, modes("normal"), name="custom", controller=Controller("custom", {})
    )
    assert len(custom.controller) == 0


async def test_a_plain_core_host_launches_an_admission_plugin(host: CipdHost) -> None:
    policy = ShutdownPolicy(grace=0.5, term_grace=0.5)
    async with Host("node", shutdown=policy) as node:
        plugin = await node.launch(AdmissionPlugin(host, modes("deaf"), name="deaf"))
        assert list(node.plugins) == ["deaf"]
        await plugin.check(Pin("good/x", IID))
        process = plugin.process
        assert process is not None
        start = time.monotonic()
    # "deaf" ignores stdin EOF and SIGTERM: the node's policy SIGKILLed it.
    assert time.monotonic() - start < 4
    assert process.returncode == -9 and plugin.closed
    with pytest.raises(AdmissionAbortedError):
        await plugin.check(Pin("good/later", IID))


def test_blocking_facade_checks_against_the_bundled_example() -> None:
    digest = "5" * 64
    iid = ObjectRef(HashAlgo.SHA256, digest).instance_id
    allowed, unlisted = Pin("infra/tools/allowed", iid), Pin("infra/tools/unlisted", iid)
    metadata = StaticMetadataSource({allowed: [MetadataEntry("allowed-sha256", digest)]})
    with BlockingHost() as bh:
        cipd = bh.enter(CipdHost(service_url=URL, metadata=metadata))
        plugin = bh.wrap(cipd.launch(EXAMPLE, name="example", connect_timeout=30))
        assert plugin.check(allowed, timeout=30) is None  # a plain call: admitted
        assert plugin.is_admitted(unlisted, timeout=30) is False
        with pytest.raises(AdmissionDeniedError, match="experimental packages"):
            plugin.check(Pin("experimental/x", iid), timeout=30)
        assert plugin.plugin_version == "plugwire example 1.0"
        process = plugin.process
        assert process is not None and process.running
    assert process.returncode == 0  # leaving the BlockingHost closed the CIPD host


async def test_host_aclose_is_the_one_close_path() -> None:
    async with CipdHost(service_url=URL) as h:
        plugin = await h.launch(modes("normal"))
        await plugin.check(Pin("good/x", IID))
        port = h.port
        await h.aclose()
        assert plugin.closed and not h.host.running and not h.plugins
        with pytest.raises(AdmissionAbortedError):
            await plugin.check(Pin("good/y", IID))
        # The server is gone too.
        with pytest.raises(OSError):
            with anyio.fail_after(5):
                await anyio.connect_tcp("127.0.0.1", port)
        await h.aclose()  # idempotent
