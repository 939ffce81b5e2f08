"""The NRI runtime on the core host model: plugin handles, one host, controllers."""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from pathlib import Path

import anyio
import pytest
from nri_support import python_plugin_executable

from plugwire.core import CapabilityDeniedError, PluginHandle, PluginProcess
from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.ttrpc.nri import (
    CAPABILITIES,
    REGISTER_PLUGIN,
    Adjustment,
    NriPlugin,
    Runtime,
    Stub,
    Update,
)
from plugwire.ttrpc.nri.api import pb

pytestmark = pytest.mark.anyio

POD = pb.PodSandbox(id="pod0", name="pod0", namespace="default")
CTR = pb.Container(id="c1", pod_sandbox_id="pod0", name="c1")


class Adjuster:
    def __init__(self, key: str = "SEEN") -> None:
        self.key = key

    async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> Adjustment:
        return Adjustment().add_env(self.key, "1")


def only_register_for(denied: str):  # type: ignore[no-untyped-def]
    def grant(name: str) -> Collection[str]:
        return {REGISTER_PLUGIN} if name == denied else CAPABILITIES

    return grant


async def test_update_containers_not_granted_is_permission_denied(sockdir: Path) -> None:
    applied: list[str] = []

    async def update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        applied.extend(u.container_id for u in updates)
        return []

    sock = sockdir / "nri.sock"
    async with Runtime(
        "rt", "1", socket_path=sock, update=update, grant=only_register_for("20-denied")
    ) as rt:
        allowed = Stub(Adjuster(), name="allowed", idx="10", socket_path=sock)
        denied = Stub(Adjuster("DENIED"), name="denied", idx="20", socket_path=sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(allowed.serve_async)
            tg.start_soon(denied.serve_async)
            await rt.wait_for_plugins(2)

            with pytest.raises(CapabilityDeniedError) as info:
                await denied.update_containers([Update("c1").set_cpu_shares(2)])
            assert "20-denied" in str(info.value)
            assert "update_containers" in str(info.value)
            wire = info.value.__cause__
            assert isinstance(wire, RemoteError)
            assert wire.code == StatusCode.PERMISSION_DENIED
            assert applied == []

            # the runtime and both plugins carry on
            assert await allowed.update_containers([Update("c2").set_cpu_shares(2)]) == []
            assert applied == ["c2"]
            assert [p.name for p in rt.plugins] == ["10-allowed", "20-denied"]
            reply = await rt.create_container(POD, CTR)
            assert sorted(e.key for e in reply.adjust.env) == ["DENIED", "SEEN"]
            denied_handle = rt.host.plugins["20-denied"]
            assert isinstance(denied_handle, NriPlugin)
            assert set(denied_handle.controller) == {"register_plugin"}
            assert set(rt.host.plugins["10-allowed"].controller) == CAPABILITIES

            allowed.stop()
            denied.stop()


async def test_register_not_granted_refuses_the_plugin(sockdir: Path) -> None:
    sock = sockdir / "nri.sock"
    grant = lambda name: set() if name == "30-nope" else CAPABILITIES  # noqa: E731
    async with Runtime("rt", "1", socket_path=sock, grant=grant) as rt:
        nope = Stub(Adjuster(), name="nope", idx="30", socket_path=sock)
        with anyio.fail_after(10), pytest.raises(RemoteError) as info:
            await nope.serve_async()
        assert info.value.code == StatusCode.PERMISSION_DENIED
        assert "30-nope" in info.value.message and "register_plugin" in info.value.message
        # still serving others
        ok = Stub(Adjuster(), name="ok", idx="10", socket_path=sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ok.serve_async)
            assert [p.name for p in await rt.wait_for_plugins(1)] == ["10-ok"]
            ok.stop()


async def test_plugins_are_core_handles_on_the_runtime_host(sockdir: Path) -> None:
    plugins = sockdir / "plugins"
    plugins.mkdir()
    python_plugin_executable(
        plugins,
        "10-installed",
        textwrap.dedent(
            """
            from plugwire.ttrpc.nri import Stub

            class P:
                async def create_container(self, pod, ctr):
                    return None

            Stub(P()).serve()
            """
        ),
    )
    sock = sockdir / "nri.sock"
    rt = Runtime("rt", "1", socket_path=sock, plugin_path=plugins, registration_timeout=20)
    async with rt:
        external = Stub(Adjuster(), name="dialled", idx="20", socket_path=sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(external.serve_async)
            infos = await rt.wait_for_plugins(2, timeout=20)
            handles = rt.host.plugins
            assert sorted(handles) == ["10-installed", "20-dialled"]
            installed, dialled = handles["10-installed"], handles["20-dialled"]
            for handle in (installed, dialled):
                assert isinstance(handle, PluginHandle)
                assert isinstance(handle, NriPlugin)
                assert handle.family == "nri"
            assert isinstance(installed.process, PluginProcess)
            assert installed.process.pid == infos[0].pid
            assert dialled.process is None
            assert infos[1].external
            proc = installed.process
            # closing the runtime closes every handle (and ends the external stub)
            await rt.aclose()
            assert installed.closed and dialled.closed
            assert not proc.running
            assert rt.host.plugins == {}
            # the external plugin saw its connection close and returns by itself
    assert not sock.exists()
