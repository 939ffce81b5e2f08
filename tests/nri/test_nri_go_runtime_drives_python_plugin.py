"""Interop 1: containerd/nri's own adaptation (the Go runtime side) drives plugwire plugins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from nri_support import GoRuntime, container, example_source, pod, python_plugin_executable

from plugwire.ttrpc.nri import Adjustment, Event, Stub, Update, event_mask
from plugwire.ttrpc.nri.api import pb

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


class Recorder:
    """Implements every handler and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.synced: tuple[int, int] | None = None
        self.config = ""

    async def configure(self, config: str, runtime: str, version: str) -> int:
        self.config = config
        self.calls.append(("configure", runtime))
        return 0

    async def synchronize(self, pods: list[Any], containers: list[Any]) -> list[Update]:
        self.synced = (len(pods), len(containers))
        return []

    async def run_pod_sandbox(self, p: pb.PodSandbox) -> None:
        self.calls.append(("run_pod_sandbox", p.id))

    async def stop_pod_sandbox(self, p: pb.PodSandbox) -> None:
        self.calls.append(("stop_pod_sandbox", p.id))

    async def remove_pod_sandbox(self, p: pb.PodSandbox) -> None:
        self.calls.append(("remove_pod_sandbox", p.id))

    async def update_pod_sandbox(
        self, p: pb.PodSandbox, overhead: pb.LinuxResources, res: pb.LinuxResources
    ) -> None:
        self.calls.append(("update_pod_sandbox", str(res.cpu.shares.value)))

    async def post_update_pod_sandbox(self, p: pb.PodSandbox) -> None:
        self.calls.append(("post_update_pod_sandbox", p.id))

    async def create_container(self, p: pb.PodSandbox, c: pb.Container) -> Adjustment:
        self.calls.append(("create_container", c.id))
        return (
            Adjustment()
            .add_env("FROM_PY", f"{p.name}/{c.name}")
            .remove_env("DROP_ME")
            .add_mount("/data", "/srv/data", options=["rbind", "ro"])
            .add_annotation("plugwire.io/seen", "yes")
            .set_memory_limit(256 << 20)
            .set_cpu_shares(333)
        )

    async def post_create_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
        self.calls.append(("post_create_container", c.id))

    async def start_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
        self.calls.append(("start_container", c.id))

    async def post_start_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
        self.calls.append(("post_start_container", c.id))

    async def update_container(
        self, p: pb.PodSandbox, c: pb.Container, r: pb.LinuxResources
    ) -> list[Update]:
        self.calls.append(("update_container", c.id))
        return [Update(c.id).set_cpu_shares(r.cpu.shares.value + 1)]

    async def post_update_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
        self.calls.append(("post_update_container", c.id))

    async def stop_container(self, p: pb.PodSandbox, c: pb.Container) -> list[Update]:
        self.calls.append(("stop_container", c.id))
        return [Update("other").set_memory_limit(1 << 30)]

    async def remove_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
        self.calls.append(("remove_container", c.id))


@asynccontextmanager
async def running(stub: Stub) -> AsyncIterator[Stub]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(stub.serve_async)
        with anyio.fail_after(10):
            await stub.started.wait()
        yield stub
        stub.stop()


async def start(rt: GoRuntime, sockdir: Path, **kw: Any) -> str:
    sock = str(sockdir / "nri.sock")
    await rt.ok("start", socket=sock, **kw)
    return sock


async def test_full_lifecycle_with_adjustments(go_runtime: GoRuntime, sockdir: Path) -> None:
    sock = await start(
        go_runtime,
        sockdir,
        pods=[pod("pod0")],
        containers=[container("c0", state="CONTAINER_RUNNING")],
    )
    rec = Recorder()
    async with running(Stub(rec, name="recorder", idx="20", socket_path=sock)) as stub:
        await go_runtime.ok("wait_plugins", count=1, timeout=10)
        assert rec.synced == (1, 1)
        assert rec.calls[0] == ("configure", "mock-runtime")
        assert stub.runtime_name == "mock-runtime"
        assert stub.request_timeout == 2.0 and stub.registration_timeout == 5.0

        p = pod("pod0")
        await go_runtime.ok("run_pod_sandbox", request={"pod": p})
        await go_runtime.ok(
            "update_pod_sandbox",
            request={"pod": p, "linux_resources": {"cpu": {"shares": {"value": "64"}}}},
        )
        await go_runtime.ok("post_update_pod_sandbox", request={"pod": p})
        ctr = container("c1", env=["DROP_ME=1", "KEEP=2"])
        created = await go_runtime.ok("create_container", request={"pod": p, "container": ctr})
        adjust = created["adjust"]
        # upstream applies env removals to the request only: the reply lists additions
        assert adjust["env"] == [{"key": "FROM_PY", "value": "pod0/c1"}]
        assert adjust["mounts"] == [
            {
                "destination": "/data",
                "type": "bind",
                "source": "/srv/data",
                "options": ["rbind", "ro"],
            }
        ]
        assert adjust["annotations"] == {"plugwire.io/seen": "yes"}
        res = adjust["linux"]["resources"]
        assert res["memory"]["limit"]["value"] == str(256 << 20)
        assert res["cpu"]["shares"]["value"] == "333"

        for op in ("post_create_container", "start_container", "post_start_container"):
            await go_runtime.ok(op, request={"pod": p, "container": ctr})
        upd = await go_runtime.ok(
            "update_container",
            request={
                "pod": p,
                "container": ctr,
                "linux_resources": {"cpu": {"shares": {"value": "100"}}},
            },
        )
        assert upd["update"][-1]["container_id"] == "c1"
        assert upd["update"][-1]["linux"]["resources"]["cpu"]["shares"]["value"] == "101"
        await go_runtime.ok("post_update_container", request={"pod": p, "container": ctr})
        stopped = await go_runtime.ok("stop_container", request={"pod": p, "container": ctr})
        assert stopped["update"][0]["container_id"] == "other"
        await go_runtime.ok("remove_container", request={"pod": p, "container": ctr})
        await go_runtime.ok("stop_pod_sandbox", request={"pod": p})
        await go_runtime.ok("remove_pod_sandbox", request={"pod": p})

    assert ("update_pod_sandbox", "64") in rec.calls
    assert [name for name, _ in rec.calls[1:]] == [
        "run_pod_sandbox",
        "update_pod_sandbox",
        "post_update_pod_sandbox",
        "create_container",
        "post_create_container",
        "start_container",
        "post_start_container",
        "update_container",
        "post_update_container",
        "stop_container",
        "remove_container",
        "stop_pod_sandbox",
        "remove_pod_sandbox",
    ]


async def test_split_synchronize(go_runtime: GoRuntime, sockdir: Path) -> None:
    # ~6 MiB of state: more than one 4 MiB ttrpc message, so the adaptation splits it.
    sock = await start(
        go_runtime, sockdir, synthetic_pods=40, synthetic_containers=700, padding=8192
    )
    rec = Recorder()
    stub = Stub(rec, name="recorder", idx="20", socket_path=sock)
    async with running(stub):
        await go_runtime.ok("wait_plugins", count=1, timeout=20)
        assert rec.synced == (40, 700)
        assert stub.sync_chunks > 1


async def test_unsolicited_updates(go_runtime: GoRuntime, sockdir: Path) -> None:
    sock = await start(go_runtime, sockdir, fail=["broken"])
    async with running(Stub(Recorder(), name="rec", idx="20", socket_path=sock)) as stub:
        await go_runtime.ok("wait_plugins", count=1, timeout=10)
        with anyio.fail_after(5):
            await stub.synchronized.wait()
        failed = await stub.update_containers(
            [Update("c7").set_cpu_shares(42), Update("broken").set_memory_limit(1)]
        )
        assert [u.container_id for u in failed] == ["broken"]
        got = await go_runtime.ok("updates")
        assert [u["container_id"] for u in got["update"]] == ["c7"]
        assert got["update"][0]["linux"]["resources"]["cpu"]["shares"]["value"] == "42"


async def test_configure_narrows_subscription(go_runtime: GoRuntime, sockdir: Path) -> None:
    class Narrow(Recorder):
        async def configure(self, config: str, runtime: str, version: str) -> int:
            return event_mask(Event.CREATE_CONTAINER)

    sock = await start(go_runtime, sockdir)
    rec = Narrow()
    async with running(Stub(rec, name="narrow", idx="20", socket_path=sock)) as stub:
        await go_runtime.ok("wait_plugins", count=1, timeout=10)
        assert stub.events == Event.CREATE_CONTAINER.bit
        await go_runtime.ok("run_pod_sandbox", request={"pod": pod()})
        await go_runtime.ok(
            "create_container", request={"pod": pod(), "container": container("c1")}
        )
        await go_runtime.ok(
            "remove_container", request={"pod": pod(), "container": container("c1")}
        )
    assert [name for name, _ in rec.calls] == ["create_container"]


async def test_handler_error_fails_the_request(go_runtime: GoRuntime, sockdir: Path) -> None:
    class Failing:
        async def create_container(self, p: pb.PodSandbox, c: pb.Container) -> None:
            raise ValueError(f"container {c.name} is not welcome")

    sock = await start(go_runtime, sockdir)
    async with running(Stub(Failing(), name="failing", idx="20", socket_path=sock)):
        await go_runtime.ok("wait_plugins", count=1, timeout=10)
        reply = await go_runtime.cmd(
            "create_container", request={"pod": pod(), "container": container("bad")}
        )
        assert not reply["ok"]
        assert "container bad is not welcome" in reply["error"]
        # the plugin stays connected: the next request goes through
        ok = await go_runtime.cmd("run_pod_sandbox", request={"pod": pod()})
        assert ok["ok"]


async def test_go_and_python_plugins_conflict(
    go_runtime: GoRuntime, sockdir: Path, go_plugin_bin: Path
) -> None:
    sock = await start(go_runtime, sockdir)
    async with await anyio.open_process(
        [str(go_plugin_bin), "-socket", sock, "-name", "goenv", "-idx", "10", "-env", "SHARED=go"]
    ) as goproc:
        try:
            await go_runtime.ok("wait_plugins", count=1, timeout=10)

            class Py:
                async def create_container(self, p: pb.PodSandbox, c: pb.Container) -> Adjustment:
                    return Adjustment().add_env("SHARED", "python")

            async with running(Stub(Py(), name="pyenv", idx="20", socket_path=sock)):
                await go_runtime.ok("wait_plugins", count=2, timeout=10)
                reply = await go_runtime.cmd(
                    "create_container", request={"pod": pod(), "container": container("c1")}
                )
        finally:
            goproc.terminate()
    assert not reply["ok"]
    assert 'plugins "20-pyenv" and "10-goenv" both tried to set Env SHARED' in reply["error"]


async def test_preinstalled_python_plugin_on_fd3(go_runtime: GoRuntime, sockdir: Path) -> None:
    plugins = sockdir / "plugins"
    conf = sockdir / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    (conf / "adjuster.conf").write_text("memory_limit=1048576\n")
    python_plugin_executable(plugins, "15-adjuster", example_source("adjuster_plugin.py"))
    await go_runtime.ok(
        "start", socket=str(sockdir / "nri.sock"), plugin_path=str(plugins), config_path=str(conf)
    )
    await go_runtime.ok("wait_plugins", count=1, timeout=15)
    created = await go_runtime.ok(
        "create_container", request={"pod": pod(), "container": container("c1")}
    )
    adjust = created["adjust"]
    # the runtime passed only NRI_PLUGIN_NAME/IDX/SOCKET: the name comes from the env
    assert {"key": "ADJUSTED_BY", "value": "adjuster"} in adjust["env"]
    # the per-plugin config file reached Configure
    assert adjust["linux"]["resources"]["memory"]["limit"]["value"] == "1048576"
