"""One core Host, plugins of every family at once (issue 13's proof of the one model).

Each family contributes a *launcher*: given the shared :class:`plugwire.core.Host` (and a
scratch directory), it launches the family's bundled example plugin through that host
and returns the plugin handle plus one real call to make. The tests then

- launch all of them on one host at the same time, call each, list them, close them
  all in parallel;
- SIGKILL a host process running plugins of three families and find no survivor;
- stop each plugin (SIGSTOP: it can answer neither its graceful step nor SIGTERM)
  and see the host kill it within its shutdown policy's bound.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from plugwire.core import Host, PluginHandle, live_plugins

pytestmark = [
    pytest.mark.crossfamily,
    pytest.mark.goplugin,
    pytest.mark.cipd,
    pytest.mark.nri,
    pytest.mark.drp,
    pytest.mark.tasks,
    pytest.mark.anyio,
]

Call = Callable[[], Awaitable[object]]
Launcher = Callable[[Host, Path, contextlib.AsyncExitStack], Awaitable[tuple[PluginHandle, Call]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio (go-plugin, CIPD, tasks) runs on asyncio only


# -- one launcher per family ----------------------------------------------------


async def goplugin(
    host: Host, tmp: Path, stack: contextlib.AsyncExitStack
) -> tuple[PluginHandle, Call]:
    from plugwire.grpc.goplugin import ClientConfig, PluginClient
    from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
    from plugwire.grpc.goplugin.examples.kv import KVPlugin

    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.kv"],
        env={"KV_DIR": str(tmp)},
        auto_mtls=True,
        start_timeout=30,
    )
    client = await host.launch(PluginClient(config))

    async def call() -> object:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="k", value=b"crossfamily"))
        got = (await kv.Get(kv_pb2.GetRequest(key="k"))).value
        assert got == b"crossfamily"
        return got

    return client, call


async def cipd(
    host: Host, tmp: Path, stack: contextlib.AsyncExitStack
) -> tuple[PluginHandle, Call]:
    from plugwire.grpc.cipd import CipdHost, Pin
    from plugwire.grpc.cipd.metadata import MetadataEntry, StaticMetadataSource
    from plugwire.grpc.cipd.pins import HashAlgo, ObjectRef

    digest = "5" * 64
    iid = ObjectRef(HashAlgo.SHA256, digest).instance_id
    allowed = Pin("infra/tools/allowed", iid)
    metadata = StaticMetadataSource({allowed: [MetadataEntry("allowed-sha256", digest)]})
    cipd_host = await stack.enter_async_context(
        CipdHost(service_url="https://cipd.example.com", metadata=metadata, host=host)
    )
    plugin = await cipd_host.launch(
        [sys.executable, "-m", "plugwire.grpc.cipd.example"], name="cipd", connect_timeout=30
    )

    async def call() -> object:
        await plugin.check(allowed, timeout=30)  # admitted: returns None
        assert plugin.process is not None and plugin.process.running
        return "admitted"

    return plugin, call


async def drp(host: Host, tmp: Path, stack: contextlib.AsyncExitStack) -> tuple[PluginHandle, Call]:
    from plugwire.http.drp import ProviderPlugin

    command = [sys.executable, "-m", "plugwire.http.drp._demo_provider"]
    plugin = await host.launch(ProviderPlugin(command, name="drp", token="crossfamily"))
    machine = {"Uuid": "6f1c0ad0-0000-4000-8000-00000000cf01", "Name": "crossfamily"}

    async def call() -> object:
        await plugin.config({"counter/enabled": True})
        value = await plugin.action("bump", model=machine, params={"counter/step": 2})
        assert value is not None
        return value

    return plugin, call


async def nri(host: Host, tmp: Path, stack: contextlib.AsyncExitStack) -> tuple[PluginHandle, Call]:
    from plugwire.ttrpc.nri import NriPlugin, Runtime
    from plugwire.ttrpc.nri._generated import api_pb2 as pb

    plugins, conf = tmp / "plugins", tmp / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    launcher = plugins / "10-adjuster"
    launcher.write_text(
        f"#!{sys.executable}\nfrom plugwire.ttrpc.nri.example import main\nmain()\n"
    )
    launcher.chmod(0o755)
    (conf / "adjuster.conf").write_text("memory_limit=268435456\n")
    runtime = await stack.enter_async_context(
        Runtime(
            "crossfamily",
            "0.1",
            socket_path=tmp / "nri.sock",
            plugin_path=plugins,
            config_path=conf,
            registration_timeout=30,
            host=host,
        )
    )
    [plugin] = [p for p in host.plugins.values() if isinstance(p, NriPlugin)]
    pod = pb.PodSandbox(id="pod0", name="pod", namespace="default")
    ctr = pb.Container(id="ctr0", pod_sandbox_id="pod0", name="ctr", env=["A=1"])

    async def call() -> object:
        reply = await runtime.create_container(pod, ctr)
        env = {e.key: e.value for e in reply.adjust.env}
        assert env.get("ADJUSTED_BY") == "10-adjuster", env
        return env

    return plugin, call


async def tasks(
    host: Host, tmp: Path, stack: contextlib.AsyncExitStack
) -> tuple[PluginHandle, Call]:
    import json

    from plugwire.core.tasks.context import TaskContext, TaskInfo
    from plugwire.core.tasks.plugin import PluginOptions, TaskPluginOptions
    from plugwire.grpc.tasks import RemoteProvider

    record = tmp / "records.jsonl"
    provider = RemoteProvider(
        [
            sys.executable,
            "-m",
            "plugwire.grpc.tasks",
            "plugwire.core.tasks.testing:RecorderProvider",
        ]
    )
    plugin = await provider.new_plugin(
        PluginOptions(name="tasks", config={"record_file": str(record)}, host=host)
    )
    assert isinstance(plugin, PluginHandle)

    async def call() -> object:
        info = TaskInfo("crossfamily-task")
        task = await plugin.new_task_plugin(TaskPluginOptions(info, TaskContext(info), {}))
        await task.dispose()
        stages = [json.loads(line)["stage"] for line in record.read_text().splitlines()]
        assert "new_task_plugin" in stages or "NewTaskPlugin" in stages, stages
        return stages

    return plugin, call


FAMILIES: dict[str, Launcher] = {
    "tasks": tasks,
    "nri": nri,
    "goplugin": goplugin,
    "cipd": cipd,
    "drp": drp,
}


@contextlib.asynccontextmanager
async def launched(
    host: Host, tmp: Path, families: dict[str, Launcher]
) -> AsyncIterator[dict[str, tuple[PluginHandle, Call]]]:
    """Launch the families' plugins on ``host`` concurrently."""
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str, tuple[PluginHandle, Call]] = {}

        async def one(name: str, launcher: Launcher) -> None:
            d = tmp / name
            d.mkdir()
            out[name] = await launcher(host, d, stack)

        async with anyio.create_task_group() as tg:
            for name, launcher in families.items():
                tg.start_soon(one, name, launcher)
        yield out


# -- the tests ----------------------------------------------------------------------


async def test_one_host_launches_calls_lists_and_closes_every_family(tmp_path: Path) -> None:
    async with Host("crossfamily", close_timeout=20) as host:
        async with launched(host, tmp_path, FAMILIES) as plugins:
            assert set(plugins) == set(FAMILIES)
            # one real call to each, concurrently
            results: dict[str, object] = {}

            async def call(name: str, fn: Call) -> None:
                results[name] = await fn()

            async with anyio.create_task_group() as tg:
                for name, (_, fn) in plugins.items():
                    tg.start_soon(call, name, fn)
            assert set(results) == set(FAMILIES)
            handles = [h for h, _ in plugins.values()]
            # the host lists them all, as plugin handles of their families
            assert {h.name for h in handles} <= set(host.plugins)
            assert all(isinstance(h, PluginHandle) for h in handles)
            families = {type(h).family for h in handles}  # type: ignore[attr-defined]
            assert families == set(FAMILIES)
            processes = [h.process for h in handles if h.process is not None]
            assert processes and all(p.running for p in processes)
            started = time.monotonic()
            await host.aclose()
            elapsed = time.monotonic() - started
        assert all(h.closed for h in handles)
        assert all(not p.running for p in processes)
        assert not set(live_plugins()) & set(handles)
        # closed in parallel: well under the sum of the graceful exits
        assert elapsed < 10, elapsed


@pytest.mark.parametrize("family", sorted(FAMILIES))
async def test_a_plugin_that_ignores_its_graceful_step_is_killed_within_the_bound(
    family: str, tmp_path: Path
) -> None:
    """SIGSTOP: the plugin answers neither its graceful step nor SIGTERM."""
    host = Host("crossfamily")
    async with host, launched(host, tmp_path, {family: FAMILIES[family]}) as plugins:
        [(handle, call)] = plugins.values()
        await call()
        process = handle.process
        assert process is not None
        policy = handle.shutdown  # type: ignore[attr-defined]
        process.signal_group(signal.SIGSTOP)
        started = time.monotonic()
        await host.close(handle)
        elapsed = time.monotonic() - started
        assert process.returncode == -signal.SIGKILL, process.returncode
        # the graceful step had its chance, and SIGKILL came within the documented
        # bound: grace, then SIGTERM's grace (plus reaping)
        assert policy.grace / 2 <= elapsed <= policy.bound + 1.5, (elapsed, policy)
        assert handle.closed and handle.name not in host.plugins


ORPHAN_HOST = textwrap.dedent(
    """
    import contextlib, sys, tempfile
    from pathlib import Path
    import anyio
    sys.path.insert(0, sys.argv[1])
    from test_crossfamily import FAMILIES, launched
    from plugwire.core import Host

    async def main():
        with tempfile.TemporaryDirectory() as tmp:
            async with Host("victim") as host:
                async with launched(host, Path(tmp), FAMILIES) as plugins:
                    for _, call in plugins.values():
                        await call()
                    pids = [h.process.pid for h, _ in plugins.values()]
                    print(" ".join(map(str, pids)), flush=True)
                    await anyio.sleep(120)

    anyio.run(main)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_sigkilled_host_leaves_no_plugin_of_any_family() -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_HOST, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        line = host.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == len(FAMILIES) >= 3, line
        assert all(_alive(p) for p in pids)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        deadline = time.monotonic() + 3.0
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [p for p in pids if _alive(p)]
        assert survivors == [], f"plugins {survivors} outlived their SIGKILLed host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
