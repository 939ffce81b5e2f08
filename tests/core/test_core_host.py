from __future__ import annotations

import signal
import sys
import time

import anyio
import anyio.abc
import pytest

from plugwire.core import (
    BasePluginHandle,
    CapabilityDeniedError,
    ClosedError,
    ConfigError,
    Controller,
    Host,
    PluginHandle,
    PluginStartError,
    ProcessPlugin,
    ShutdownPolicy,
    live_plugins,
)

pytestmark = pytest.mark.anyio

STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\ntime.sleep(60)",
]
POLITE = [sys.executable, "-c", "import time\nprint('up', flush=True)\ntime.sleep(60)"]


def stubborn(name: str, policy: ShutdownPolicy | None = None) -> ProcessPlugin:
    return ProcessPlugin(name, STUBBORN, env={}, shutdown=policy)


async def test_launch_track_and_close_all_in_parallel() -> None:
    policy = ShutdownPolicy(grace=0.5, term_grace=0.5)
    async with Host("h", shutdown=policy, close_timeout=10) as host:
        plugins = [await host.launch(stubborn(f"p{i}")) for i in range(4)]
        for plugin in plugins:
            assert isinstance(plugin, PluginHandle)
            assert await plugin.process.readline_stdout(timeout=20) == "up"
        assert sorted(host.plugins) == ["p0", "p1", "p2", "p3"]
        assert set(live_plugins(ProcessPlugin)) >= set(plugins)
        started = time.monotonic()
        await host.aclose()
        elapsed = time.monotonic() - started
    # four plugins each ignoring SIGTERM for a 1 s bound: in parallel, not 4 s
    assert elapsed < 3.0
    assert all(p.process.returncode == -signal.SIGKILL for p in plugins)
    assert all(p.closed for p in plugins)
    assert host.plugins == {}
    assert not set(live_plugins()) & set(plugins)


async def test_shutdown_sequence_steps() -> None:
    """Polite plugin: gone at SIGTERM (after the grace); stubborn: SIGKILL after both."""
    policy = ShutdownPolicy(grace=0.3, term_grace=0.3)
    async with Host("h") as host:  # each plugin keeps its own policy
        polite = await host.launch(
            ProcessPlugin("polite", POLITE, env={}, polite_signal=None, shutdown=policy)
        )
        rude = await host.launch(stubborn("rude", policy))
        for plugin in (polite, rude):
            assert await plugin.process.readline_stdout(timeout=20) == "up"
        started = time.monotonic()
        await host.close(polite)
        assert polite.process.returncode == -signal.SIGTERM
        assert 0.25 < time.monotonic() - started < 2.0
        started = time.monotonic()
        await host.close("rude")
        assert rude.process.returncode == -signal.SIGKILL
        assert 0.5 < time.monotonic() - started < policy.bound + 1.0
        assert rude.process.error is None  # an exit we asked for is not an error


class Hangs(BasePluginHandle):
    """A family whose graceful step and release hang."""

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        pass

    async def _graceful_stop(self) -> None:
        await anyio.sleep(60)

    async def _release(self) -> None:
        await anyio.sleep(60)


async def test_close_deadline_kills_what_hangs() -> None:
    async with Host("h", close_timeout=0.5) as host:
        plugin = await host.launch(stubborn("p"))
        await plugin.process.readline_stdout(timeout=20)
        await host.launch(Hangs("hanging"))
        started = time.monotonic()
        await host.aclose()
        assert time.monotonic() - started < 5
        assert plugin.process.returncode == -signal.SIGKILL


async def test_close_one_and_duplicate_names() -> None:
    async with Host() as host:
        await host.launch(stubborn("a"))
        with pytest.raises(ConfigError, match="already tracked"):
            await host.launch(stubborn("a"))
        await host.close("a")
        assert "a" not in host.plugins
    with pytest.raises(ClosedError):
        await host.launch(stubborn("b"))


async def test_failed_start_leaves_nothing() -> None:
    class Fails(BasePluginHandle):
        released = False

        async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
            raise PluginStartError("no", peer=self.peer, step="handshake")

        async def _release(self) -> None:
            self.released = True

    async with Host() as host:
        plugin = Fails("f")
        with pytest.raises(PluginStartError, match="handshake"):
            await host.launch(plugin)
        assert "f" not in host.plugins and plugin.closed and plugin.released
        assert plugin not in live_plugins()
        with pytest.raises(PluginStartError, match="already"):
            await plugin.start()


async def test_close_errors_do_not_stop_the_rest() -> None:
    closed: list[str] = []

    class Broken(BasePluginHandle):
        async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
            pass

        async def _graceful_stop(self) -> None:
            raise RuntimeError("boom")

        async def _release(self) -> None:
            raise RuntimeError("boom again")

    class Fine(Broken):
        async def _release(self) -> None:
            closed.append(self.name)

    async with Host() as host:
        await host.launch(Broken("broken"))
        await host.launch(Fine("fine"))
    assert closed == ["fine"]


async def test_handle_as_context_manager_and_idempotent_close() -> None:
    async with ProcessPlugin("own", POLITE, env={}) as plugin:
        assert await plugin.process.readline_stdout(timeout=20) == "up"
        assert plugin in live_plugins()
    assert plugin.closed and plugin.process.returncode == -signal.SIGTERM
    await plugin.aclose()  # again: a no-op
    with pytest.raises(ConfigError, match="task group"):
        await ProcessPlugin("no-tg", POLITE, env={}).start()


def test_controller_capabilities() -> None:
    ctl = Controller("kv", {"log": print})
    assert ctl.require("log") is print
    assert ctl.require("log", type(print)) is print
    with pytest.raises(CapabilityDeniedError) as info:
        ctl.require("metadata")
    assert "kv" in str(info.value) and "metadata" in str(info.value)
    with pytest.raises(CapabilityDeniedError, match="wrong type"):
        ctl.require("log", int)
    wider = ctl.grant("metadata", {})
    assert set(wider) == {"log", "metadata"} and set(ctl) == {"log"}
    assert set(wider.revoke("log")) == {"metadata"}
    assert isinstance(ctl, Controller) and len(wider) == 2
