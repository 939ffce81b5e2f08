"""Interop 2: plugwire's runtime hosts Go plugins built on containerd/nri's pkg/stub.

The same plugins and requests run on upstream's adaptation (the Go harness) and on
plugwire's :class:`Runtime`, externally connected and pre-installed (fd 3 + config
files); the merged results must be identical.

Upstream's sample plugins (plugins/logger, template, device-injector,
ulimit-adjuster) are separate, untagged Go modules that the module proxy does not
serve, so the Go peer is ``tests/interop/nri/cmd/nriplugin``: upstream's stub with
the same behaviours (event logging, rlimits and devices from pod annotations, fixed
env/annotation/mount/memory adjustments).
"""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from nri_support import (
    GoRuntime,
    external_processes,
    from_dict,
    go_plugin_argv,
    install_plugins,
    to_dict,
)

from plugwire.core.errors import PluginTimeoutError
from plugwire.ttrpc.nri import Runtime, SyncCallback
from plugwire.ttrpc.nri.api import pb

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

#: name -> flags (command line when external, config file when pre-installed)
PLUGINS: dict[str, list[str]] = {
    "10-logger": ["-log"],
    "20-ulimit-adjuster": ["-ulimits", "-events", "createcontainer"],
    "30-device-injector": ["-devices", "-events", "createcontainer"],
    "40-template": [
        "-env",
        "TEMPLATE=1",
        "-annotation",
        "template.plugwire.io=yes",
        "-memory-limit",
        "1048576",
        "-mount",
        "/tpl:/srv/tpl",
        "-update-shares",
        "321",
    ],
}

POD: dict[str, Any] = {
    "id": "pod0",
    "name": "pod0",
    "namespace": "default",
    "annotations": {
        "ulimits.nri.plugwire.io/container.c1": "RLIMIT_NOFILE:1024:512;RLIMIT_NPROC:200:100",
        "devices.nri.plugwire.io/container.c1": "/dev/fuse:c:10:229",
    },
}
CONTAINER: dict[str, Any] = {
    "id": "c1",
    "pod_sandbox_id": "pod0",
    "name": "c1",
    "env": ["A=1"],
    "mounts": [{"destination": "/tpl", "source": "/old", "type": "bind"}],
}
RESOURCES: dict[str, Any] = {"memory": {"limit": {"value": "4096"}}}


async def scenario_go(rt: GoRuntime) -> dict[str, Any]:
    await rt.ok("run_pod_sandbox", request={"pod": POD})
    created = await rt.ok("create_container", request={"pod": POD, "container": CONTAINER})
    updated = await rt.ok(
        "update_container",
        request={"pod": POD, "container": CONTAINER, "linux_resources": RESOURCES},
    )
    stopped = await rt.ok("stop_container", request={"pod": POD, "container": CONTAINER})
    await rt.ok("remove_container", request={"pod": POD, "container": CONTAINER})
    return {"create": created, "update": updated, "stop": stopped}


async def scenario_py(rt: Runtime) -> dict[str, Any]:
    pod, ctr = from_dict(pb.PodSandbox, POD), from_dict(pb.Container, CONTAINER)
    await rt.run_pod_sandbox(pod)
    created = await rt.create_container(pod, ctr)
    updated = await rt.update_container(pod, ctr, from_dict(pb.LinuxResources, RESOURCES))
    stopped = await rt.stop_container(pod, ctr)
    await rt.remove_container(pod, ctr)
    return {"create": to_dict(created), "update": to_dict(updated), "stop": to_dict(stopped)}


def external_plugins(binary: Path, socket: Path) -> AbstractAsyncContextManager[None]:
    return external_processes(
        {name: go_plugin_argv(binary, socket, name, flags) for name, flags in PLUGINS.items()}
    )


def install(binary: Path, root: Path) -> tuple[Path, Path]:
    return install_plugins(
        root, {name: (binary, " ".join(flags) + "\n") for name, flags in PLUGINS.items()}
    )


async def sync_one(callback: SyncCallback) -> None:
    await callback([from_dict(pb.PodSandbox, POD)], [from_dict(pb.Container, CONTAINER)])


async def test_external_go_plugins_merge_like_upstream(
    go_runtime: GoRuntime, go_plugin_bin: Path, sockdir: Path
) -> None:
    go_sock = sockdir / "go" / "nri.sock"
    await go_runtime.ok("start", socket=str(go_sock))
    async with external_plugins(go_plugin_bin, go_sock):
        await go_runtime.ok("wait_plugins", count=len(PLUGINS), timeout=20)
        expected = await scenario_go(go_runtime)

    py_sock = sockdir / "py" / "nri.sock"
    async with (
        Runtime("plugwire", "0.1", socket_path=py_sock, sync=sync_one) as rt,
        external_plugins(go_plugin_bin, py_sock),
    ):
        infos = await rt.wait_for_plugins(len(PLUGINS), timeout=20)
        assert [p.name for p in infos] == list(PLUGINS)
        got = await scenario_py(rt)

    # sanity: the scenario exercised every plugin's adjustment
    adjust = expected["create"]["adjust"]
    assert {r["type"] for r in adjust["rlimits"]} == {"RLIMIT_NOFILE", "RLIMIT_NPROC"}
    assert adjust["linux"]["devices"][0]["path"] == "/dev/fuse"
    assert {"key": "TEMPLATE", "value": "1"} in adjust["env"]
    assert got == expected


async def test_preinstalled_go_plugins_merge_like_upstream(
    go_runtime: GoRuntime, go_plugin_bin: Path, sockdir: Path
) -> None:
    go_root, py_root = sockdir / "go", sockdir / "py"
    go_root.mkdir()
    py_root.mkdir()
    plugins, conf = install(go_plugin_bin, go_root)
    await go_runtime.ok(
        "start",
        socket=str(go_root / "nri.sock"),
        plugin_path=str(plugins),
        config_path=str(conf),
        pods=[POD],
        containers=[CONTAINER],
    )
    await go_runtime.ok("wait_plugins", count=len(PLUGINS), timeout=20)
    expected = await scenario_go(go_runtime)

    plugins, conf = install(go_plugin_bin, py_root)
    async with Runtime(
        "plugwire",
        "0.1",
        socket_path=None,
        listen=False,
        plugin_path=plugins,
        config_path=conf,
        sync=sync_one,
    ) as rt:
        infos = await rt.wait_for_plugins(len(PLUGINS), timeout=20)
        assert [p.name for p in infos] == list(PLUGINS)
        assert not any(p.external for p in infos)
        pids = [p.pid for p in infos]
        got = await scenario_py(rt)
    assert got == expected
    # the runtime stopped the plugins it launched
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_preinstalled_plugin_missing_registration_is_killed(sockdir: Path) -> None:
    plugins = sockdir / "plugins"
    plugins.mkdir()
    silent = plugins / "10-silent"
    pidfile = sockdir / "silent.pid"
    silent.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    silent.chmod(0o755)
    async with Runtime(
        "plugwire",
        "0.1",
        socket_path=None,
        listen=False,
        plugin_path=plugins,
        registration_timeout=0.3,
    ) as rt:
        assert rt.plugins == []
        with pytest.raises(PluginTimeoutError):
            await rt.wait_for_plugins(1, timeout=0.1)
        # upstream kills a launched plugin that misses the registration timeout
        pid = int(pidfile.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_go_plugin_split_sync_and_unsolicited_update(
    go_plugin_bin: Path, sockdir: Path
) -> None:
    """plugwire's runtime splits a ~6 MiB Synchronize for upstream's stub, which
    reassembles it, then takes the plugin's unsolicited update."""
    pad = "p" * 8192
    pods = [pb.PodSandbox(id=f"p{i}", annotations={"pad": pad}) for i in range(40)]
    ctrs = [pb.Container(id=f"c{i}", annotations={"pad": pad}) for i in range(700)]
    got: list[pb.ContainerUpdate] = []
    updated = anyio.Event()

    async def sync(callback: SyncCallback) -> None:
        await callback(pods, ctrs)

    async def update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        got.extend(updates)
        updated.set()
        return []

    sock = sockdir / "nri.sock"
    argv = [str(go_plugin_bin), "-socket", str(sock), "-idx", "10", "-name", "go"]
    argv += ["-log", "-update-after-sync", "c3"]
    async with (
        Runtime("plugwire", "0.1", socket_path=sock, sync=sync, update=update) as rt,
        await anyio.open_process(argv) as proc,
    ):
        assert proc.stderr is not None
        await rt.wait_for_plugins(1, timeout=20)
        with anyio.fail_after(10):
            await updated.wait()
        proc.terminate()
        log = b""
        async for chunk in proc.stderr:
            log += chunk
    assert [u.container_id for u in got] == ["c3"]
    assert got[0].linux.resources.cpu.shares.value == 777
    assert b"Synchronize pods=40 containers=700" in log
