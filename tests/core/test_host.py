from __future__ import annotations

import signal
import sys
import time

import anyio
import pytest

from plugwire.core import (
    CapabilityDeniedError,
    ClosedError,
    ConfigError,
    Controller,
    Host,
)

pytestmark = pytest.mark.anyio

STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\ntime.sleep(60)",
]


async def test_launch_track_and_close_all_in_parallel() -> None:
    async with Host("h", grace=1.0, close_timeout=10) as host:
        procs = [await host.launch(f"p{i}", STUBBORN, env={}) for i in range(4)]
        for proc in procs:
            assert await proc.readline_stdout(timeout=20) == "up"
        assert sorted(host.plugins) == ["p0", "p1", "p2", "p3"]
        started = time.monotonic()
        await host.aclose()
        elapsed = time.monotonic() - started
    # four plugins each ignoring SIGTERM for a 1 s grace: in parallel, not 4 s
    assert elapsed < 3.5
    assert all(p.returncode == -signal.SIGKILL for p in procs)
    assert host.plugins == {}


async def test_close_deadline_kills_what_hangs() -> None:
    class Hangs:
        async def aclose(self) -> None:
            await anyio.sleep(60)

    async with Host("h", close_timeout=0.5) as host:
        proc = await host.launch("p", STUBBORN, env={})
        await proc.readline_stdout(timeout=20)
        host.track("hanging", Hangs())
        started = time.monotonic()
        await host.aclose()
        assert time.monotonic() - started < 5
        assert proc.returncode == -signal.SIGKILL


async def test_close_one_and_duplicate_names() -> None:
    async with Host() as host:
        await host.launch("a", STUBBORN, env={})
        with pytest.raises(ConfigError, match="already tracked"):
            await host.launch("a", STUBBORN, env={})
        await host.close("a")
        assert "a" not in host.plugins
    with pytest.raises(ClosedError):
        await host.launch("b", STUBBORN, env={})


async def test_resource_close_errors_do_not_stop_the_rest() -> None:
    closed: list[str] = []

    class Broken:
        async def aclose(self) -> None:
            raise RuntimeError("boom")

    class Fine:
        async def aclose(self) -> None:
            closed.append("fine")

    async with Host() as host:
        host.track("broken", Broken())
        host.track("fine", Fine())
    assert closed == ["fine"]


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
