"""What a task plugin may use of a task is granted through a core Controller; the
local engine spawns through core PluginProcess (its new options are tested here)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from plugwire.core import Host
from plugwire.core.controller import CapabilityDeniedError
from plugwire.core.errors import PluginStartError
from plugwire.core.process import PluginProcess
from plugwire.core.tasks import (
    ExceptionReason,
    PluginManager,
    Registry,
    TaskPluginHandle,
    run_task,
    task_controller,
)
from plugwire.core.tasks.builtins.env import EnvProvider
from plugwire.core.tasks.local import LocalProcessEngine

pytestmark = [pytest.mark.anyio, pytest.mark.tasks, pytest.mark.timeout(120)]

ENV_PLUGIN = [
    sys.executable,
    "-m",
    "plugwire.grpc.tasks",
    "plugwire.core.tasks.builtins.env:EnvProvider",
]


def _denied(error: BaseException | None) -> CapabilityDeniedError:
    seen: BaseException | None = error
    while seen is not None:
        for failure in getattr(seen, "failures", ()):
            if isinstance(failure.error, CapabilityDeniedError):
                return failure.error
        seen = seen.__cause__
    raise AssertionError(f"no CapabilityDeniedError in {error!r}")


async def test_in_process_plugin_denied_env_gets_typed_error(tmp_path: Path) -> None:
    reg = Registry(entry_points=())
    reg.register("env", EnvProvider())
    engine = LocalProcessEngine(root=tmp_path / "w")
    payload = {"command": ["true"], "env": {"X": "1"}}
    async with PluginManager.open({"env": {}}, registry=reg, grants={"env": ["abort"]}) as m:
        assert isinstance(m.controller("env"), type(task_controller("env")))
        assert list(m.controller("env")) == ["abort"]
        result = await run_task(m, engine, payload)
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    denied = _denied(result.error)
    assert denied.peer == "env" and denied.seen == "env"
    assert "plugin 'env' may not use 'env'" in str(denied)
    # granted (the default): the same task succeeds
    async with PluginManager.open({"env": {}}, registry=reg) as m:
        result = await run_task(m, engine, payload)
    assert result.success


@pytest.mark.interop
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_out_of_process_plugin_denied_env_gets_typed_error(tmp_path: Path) -> None:
    from plugwire.grpc.tasks import RemoteProvider

    reg = Registry(entry_points=())
    reg.register("remote", RemoteProvider(ENV_PLUGIN))
    engine = LocalProcessEngine(root=tmp_path / "w")
    payload = {"command": ["true"], "env": {"X": "1"}}
    async with PluginManager.open({"remote": {}}, registry=reg, grants={"remote": []}) as m:
        plugin = m.plugins["remote"]
        assert plugin in m._host.plugins.values()  # type: ignore[union-attr]
        assert plugin.family == "tasks"  # type: ignore[attr-defined]
        result = await run_task(m, engine, payload)
    assert plugin.closed  # type: ignore[attr-defined]
    assert result.reason == ExceptionReason.INTERNAL_ERROR
    denied = _denied(result.error)
    assert denied.peer == "remote" and denied.seen == "env"


async def test_in_process_plugins_are_core_handles_closed_by_the_host() -> None:
    closed: list[str] = []

    from plugwire.core.tasks import Plugin, PluginProvider

    class _P(Plugin):
        async def aclose(self) -> None:
            closed.append("p")

    class _Prov(PluginProvider):
        async def new_plugin(self, options):  # type: ignore[no-untyped-def]
            assert options.host is not None and options.controller is not None
            return _P()

    reg = Registry(entry_points=())
    reg.register("p", _Prov())
    async with PluginManager.open({"p": {}}, registry=reg) as m:
        handle = m._host.plugins["p"]  # type: ignore[union-attr]
        assert isinstance(handle, TaskPluginHandle) and handle.family == "tasks"
    assert closed == ["p"] and handle.closed


async def test_process_merge_stderr_raw_output_and_leftovers() -> None:
    chunks: list[bytes] = []
    code = (
        "import os, sys, subprocess; sys.stdout.write('out\\n'); sys.stdout.flush();"
        " sys.stderr.write('err\\xff\\n'); sys.stderr.flush();"
        " p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True)"
    )
    async with Host("t") as host:
        proc = PluginProcess(
            [sys.executable, "-c", code],
            env={"PATH": "/usr/bin:/bin"},
            name="merge",
            merge_stderr=True,
            on_output=chunks.append,
            use_setpriv=False,
        )
        await proc.start(host.task_group)
        assert await proc.wait() == 0
        data = b"".join(chunks)
        assert b"out\n" in data and "err\xff\n".encode() in data
        leftover = int(data.splitlines()[-1])
        proc.signal_leftovers(9)
        with anyio.fail_after(10):
            while _state(leftover) != "Z":  # noqa: ASYNC110  (polling /proc)
                await anyio.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


async def test_local_engine_missing_command_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(PluginStartError):
        async with Host("t") as host:
            await PluginProcess(["/no/such/cmd"], env={}, name="x").start(host.task_group)
