"""plugwire's NRI runtime hosting plugwire plugins (in process), on asyncio and trio."""

from __future__ import annotations

import stat
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from nri_support import example_source, python_plugin_executable

from plugwire.core.errors import ConfigError, PluginTimeoutError
from plugwire.ttrpc.nri import (
    Adjustment,
    ConflictError,
    Event,
    NriError,
    PluginRejectedError,
    Runtime,
    Stub,
    SyncCallback,
    Update,
    event_mask,
)
from plugwire.ttrpc.nri._session import Handler, open_session
from plugwire.ttrpc.nri.api import PLUGIN_SERVICE, RUNTIME_SERVICE, pb

pytestmark = pytest.mark.anyio

POD = pb.PodSandbox(id="pod0", name="pod0", namespace="default")


def ctr(cid: str = "c1", **kw: Any) -> pb.Container:
    return pb.Container(id=cid, pod_sandbox_id="pod0", name=cid, **kw)


class EnvPlugin:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value
        self.seen_env: list[str] = []

    async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> Adjustment:
        self.seen_env = list(c.env)
        return Adjustment().add_env(self.key, self.value)


@asynccontextmanager
async def plugins(*stubs: Stub) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        for stub in stubs:
            tg.start_soon(stub.serve_async)
        with anyio.fail_after(10):
            for stub in stubs:
                await stub.started.wait()
        yield
        for stub in stubs:
            stub.stop()


def runtime(sockdir: Path, **kw: Any) -> Runtime:
    return Runtime("plugwire-test", "0.1", socket_path=sockdir / "run" / "nri.sock", **kw)


async def test_index_order_and_visible_adjustments(sockdir: Path) -> None:
    first, second = EnvPlugin("A", "1"), EnvPlugin("B", "2")
    async with runtime(sockdir) as rt:
        sock = rt.socket_path
        assert sock is not None
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        # registered in the "wrong" order: the runtime sorts by index
        async with plugins(
            Stub(second, name="second", idx="20", socket_path=sock),
            Stub(first, name="first", idx="10", socket_path=sock),
        ):
            infos = await rt.wait_for_plugins(2)
            assert [p.name for p in infos] == ["10-first", "20-second"]
            assert all(p.external for p in infos)
            rpl = await rt.create_container(POD, ctr(env=["X=0"]))
    assert [(e.key, e.value) for e in rpl.adjust.env] == [("A", "1"), ("B", "2")]
    # the second plugin saw the first one's adjustment already applied
    assert second.seen_env == ["X=0", "A=1"]


async def test_conflict_between_plugins(sockdir: Path) -> None:
    async with (
        runtime(sockdir) as rt,
        plugins(
            Stub(EnvPlugin("SAME", "a"), name="a", idx="10", socket_path=rt.socket_path),
            Stub(EnvPlugin("SAME", "b"), name="b", idx="20", socket_path=rt.socket_path),
        ),
    ):
        await rt.wait_for_plugins(2)
        with pytest.raises(ConflictError) as info:
            await rt.create_container(POD, ctr())
        assert str(info.value).startswith('plugins "20-b" and "10-a" both tried to set Env SAME')
        assert info.value.plugins == ("20-b", "10-a")
        # the runtime keeps working: the next container is fine for a single plugin's field
        assert len(rt.plugins) == 2


async def test_validator_rejects(sockdir: Path) -> None:
    class Validator:
        def __init__(self) -> None:
            self.request: pb.ValidateContainerAdjustmentRequest | None = None

        async def validate_container_adjustment(
            self, req: pb.ValidateContainerAdjustmentRequest
        ) -> None:
            self.request = req
            if any(e.key == "FORBIDDEN" for e in req.adjust.env):
                raise ValueError("FORBIDDEN is forbidden")

    validator = Validator()
    async with (
        runtime(sockdir) as rt,
        plugins(
            Stub(EnvPlugin("FORBIDDEN", "1"), name="env", idx="10", socket_path=rt.socket_path),
            Stub(validator, name="validator", idx="90", socket_path=rt.socket_path),
        ),
    ):
        await rt.wait_for_plugins(2)
        with pytest.raises(PluginRejectedError, match="FORBIDDEN is forbidden"):
            await rt.create_container(POD, ctr())
    assert validator.request is not None
    assert [(p.name, p.index) for p in validator.request.plugins] == [
        ("env", "10"),
        ("validator", "90"),
    ]
    owners = validator.request.owners.owners["c1"]
    assert owners.compound[pb.Env].owners["FORBIDDEN"] == "10-env"


async def test_update_and_stop_merge_and_unsolicited_updates(sockdir: Path) -> None:
    received: list[pb.ContainerUpdate] = []

    async def update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        received.extend(updates)
        return [u for u in updates if u.container_id == "gone"]

    class Updater:
        async def update_container(
            self, pod: pb.PodSandbox, c: pb.Container, r: pb.LinuxResources
        ) -> list[Update]:
            return [Update(c.id).set_cpu_shares(10), Update("neighbour").set_memory_limit(5)]

        async def stop_container(self, pod: pb.PodSandbox, c: pb.Container) -> list[Update]:
            return [Update("neighbour").set_cpu_quota(1000)]

    stub = Stub(Updater(), name="upd", idx="10")
    async with runtime(sockdir, update=update) as rt:
        stub.socket_path = str(rt.socket_path)
        async with plugins(stub):
            await rt.wait_for_plugins(1)
            res = pb.LinuxResources()
            res.memory.limit.value = 100
            rpl = await rt.update_container(POD, ctr(), res)
            assert [u.container_id for u in rpl.update] == ["neighbour", "c1"]
            assert rpl.update[1].linux.resources.cpu.shares.value == 10
            assert rpl.update[1].linux.resources.memory.limit.value == 100
            stopped = await rt.stop_container(POD, ctr())
            assert stopped.update[0].linux.resources.cpu.quota.value == 1000
            failed = await stub.update_containers([Update("x").set_cpu_shares(1), Update("gone")])
    assert [u.container_id for u in failed] == ["gone"]
    assert [u.container_id for u in received] == ["x", "gone"]


async def test_split_synchronize(sockdir: Path) -> None:
    pad = "p" * 8192
    pods = [pb.PodSandbox(id=f"p{i}", annotations={"pad": pad}) for i in range(30)]
    ctrs = [pb.Container(id=f"c{i}", annotations={"pad": pad}) for i in range(600)]

    async def sync(callback: SyncCallback) -> None:
        await callback(pods, ctrs)

    class Syncer:
        got: tuple[int, int] = (0, 0)

        async def synchronize(
            self, p: Sequence[pb.PodSandbox], c: Sequence[pb.Container]
        ) -> list[Update]:
            self.got = (len(p), len(c))
            return []

        async def remove_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
            pass

    syncer = Syncer()
    stub = Stub(syncer, name="sync", idx="10")
    async with runtime(sockdir, sync=sync) as rt:
        stub.socket_path = str(rt.socket_path)
        async with plugins(stub):
            await rt.wait_for_plugins(1)
    assert syncer.got == (30, 600)
    assert stub.sync_chunks > 1


async def test_configure_narrowing_and_handler_error(sockdir: Path) -> None:
    class Narrow:
        calls: list[str] = []

        async def configure(self, config: str, runtime: str, version: str) -> int:
            return event_mask(Event.CREATE_CONTAINER)

        async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
            self.calls.append("run")

        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
            raise RuntimeError("no thanks")

    narrow = Narrow()
    async with (
        runtime(sockdir) as rt,
        plugins(Stub(narrow, name="narrow", idx="10", socket_path=rt.socket_path)),
    ):
        [info] = await rt.wait_for_plugins(1)
        assert info.events == Event.CREATE_CONTAINER.bit
        await rt.run_pod_sandbox(POD)
        with pytest.raises(NriError, match="no thanks"):
            await rt.create_container(POD, ctr())
        assert len(rt.plugins) == 1  # an error reply does not drop the plugin
    assert narrow.calls == []


async def test_hanging_plugin_is_dropped_and_others_continue(sockdir: Path) -> None:
    class Hang:
        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
            await anyio.sleep(30)

    async with (
        runtime(sockdir, request_timeout=0.5) as rt,
        plugins(
            Stub(Hang(), name="hang", idx="10", socket_path=rt.socket_path),
            Stub(EnvPlugin("OK", "1"), name="ok", idx="20", socket_path=rt.socket_path),
        ),
    ):
        await rt.wait_for_plugins(2)
        with anyio.fail_after(5):
            rpl = await rt.create_container(POD, ctr())
        assert [e.key for e in rpl.adjust.env] == ["OK"]
        assert [p.name for p in rt.plugins] == ["20-ok"]


async def test_disconnect_mid_call_is_dropped(sockdir: Path) -> None:
    stubs: list[Stub] = []

    class Quitter:
        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
            stubs[0].stop()
            await anyio.sleep(30)

    stubs.append(Stub(Quitter(), name="quitter", idx="10"))
    async with runtime(sockdir) as rt:
        stubs[0].socket_path = str(rt.socket_path)
        async with plugins(
            stubs[0], Stub(EnvPlugin("OK", "1"), name="ok", idx="20", socket_path=rt.socket_path)
        ):
            await rt.wait_for_plugins(2)
            with anyio.fail_after(5):
                rpl = await rt.create_container(POD, ctr())
            assert [e.key for e in rpl.adjust.env] == ["OK"]
            assert [p.name for p in rt.plugins] == ["20-ok"]


async def test_plugin_that_never_registers_is_closed(sockdir: Path) -> None:
    async with runtime(sockdir, registration_timeout=0.3) as rt:
        assert rt.socket_path is not None
        async with await anyio.connect_unix(rt.socket_path) as silent:
            with anyio.fail_after(5):
                # the runtime closes the connection after the registration timeout
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await silent.receive()
        assert rt.plugins == []
        with pytest.raises(PluginTimeoutError, match="only 0 of 1"):
            await rt.wait_for_plugins(1, timeout=0.1)


async def test_oversized_frame_drops_plugin(sockdir: Path) -> None:
    async with (
        runtime(sockdir) as rt,
        plugins(Stub(EnvPlugin("OK", "1"), name="ok", idx="20", socket_path=rt.socket_path)),
    ):
        await rt.wait_for_plugins(1)
        assert rt.socket_path is not None
        async with await anyio.connect_unix(rt.socket_path) as bad:
            # a frame header announcing 64 MiB: the runtime must not try to buffer it
            await bad.send(struct.pack(">II", 2, 64 << 20))
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await bad.receive()
        rpl = await rt.create_container(POD, ctr())
        assert [e.key for e in rpl.adjust.env] == ["OK"]


async def test_oversized_reply_fails_the_request(sockdir: Path) -> None:
    class Huge:
        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> Adjustment:
            return Adjustment().add_annotation("huge", "x" * (5 << 20))

    async with (
        runtime(sockdir) as rt,
        plugins(Stub(Huge(), name="huge", idx="10", socket_path=rt.socket_path)),
    ):
        await rt.wait_for_plugins(1)
        with pytest.raises(NriError, match="exceed maximum message size"):
            await rt.create_container(POD, ctr())


async def test_state_change_fallback(sockdir: Path) -> None:
    """A plugin without the dedicated RPCs (older NRI) still gets events via StateChange."""
    seen: list[int] = []

    async def configure(data: bytes) -> bytes:
        return pb.ConfigureResponse(events=0).SerializeToString()

    async def synchronize(data: bytes) -> bytes:
        return pb.SynchronizeResponse().SerializeToString()

    async def state_change(data: bytes) -> bytes:
        seen.append(pb.StateChangeEvent.FromString(data).event)
        return b""

    handlers: dict[tuple[str, str], Handler] = {
        (PLUGIN_SERVICE, "Configure"): configure,
        (PLUGIN_SERVICE, "Synchronize"): synchronize,
        (PLUGIN_SERVICE, "StateChange"): state_change,
    }
    async with runtime(sockdir) as rt:
        assert rt.socket_path is not None
        trunk = await anyio.connect_unix(rt.socket_path)
        async with open_session(trunk, handlers, plugin_side=True) as session:
            req = pb.RegisterPluginRequest(plugin_name="legacy", plugin_idx="10")
            await session.client.call(RUNTIME_SERVICE, "RegisterPlugin", req.SerializeToString())
            await rt.wait_for_plugins(1)
            await rt.run_pod_sandbox(POD)
            await rt.start_container(POD, ctr())
            # CreateContainer has no StateChange form: Unimplemented fails it, as upstream
            with pytest.raises(NriError, match="method CreateContainer"):
                await rt.create_container(POD, ctr())
    assert seen == [Event.RUN_POD_SANDBOX, Event.START_CONTAINER]


async def test_invalid_registration_name_is_refused(sockdir: Path) -> None:
    async with runtime(sockdir) as rt:
        assert rt.socket_path is not None
        trunk = await anyio.connect_unix(rt.socket_path)
        async with open_session(trunk, {}, plugin_side=True) as session:
            req = pb.RegisterPluginRequest(plugin_name="bad/name", plugin_idx="1")
            with pytest.raises(Exception, match="invalid"):
                await session.client.call(
                    RUNTIME_SERVICE, "RegisterPlugin", req.SerializeToString()
                )
        assert rt.plugins == []


async def test_malformed_reply_fails_the_request_and_the_runtime_carries_on(
    sockdir: Path,
) -> None:
    async def empty(data: bytes) -> bytes:
        return b""

    async def garbage(data: bytes) -> bytes:
        return b"\xff\xff\xff"  # not a protobuf message

    handlers: dict[tuple[str, str], Handler] = {
        (PLUGIN_SERVICE, "Configure"): empty,
        (PLUGIN_SERVICE, "Synchronize"): empty,
        (PLUGIN_SERVICE, "CreateContainer"): garbage,
        (PLUGIN_SERVICE, "StartContainer"): empty,
    }
    async with runtime(sockdir) as rt:
        assert rt.socket_path is not None
        trunk = await anyio.connect_unix(rt.socket_path)
        async with open_session(trunk, handlers, plugin_side=True) as session:
            req = pb.RegisterPluginRequest(plugin_name="garbled", plugin_idx="10")
            await session.call(RUNTIME_SERVICE, "RegisterPlugin", req, pb.Empty)
            await rt.wait_for_plugins(1)
            with pytest.raises(NriError, match="malformed CreateContainer reply") as info:
                await rt.create_container(POD, ctr())
            assert (info.value.peer, info.value.step) == ("10-garbled", "CreateContainer")
            await rt.start_container(POD, ctr())  # the plugin and the runtime go on
            assert [p.name for p in rt.plugins] == ["10-garbled"]


async def test_stub_reconnects_when_the_runtime_restarts(sockdir: Path) -> None:
    stub = Stub(
        EnvPlugin("R", "1"),
        name="sticky",
        idx="10",
        socket_path=sockdir / "run" / "nri.sock",
        reconnect=True,
        reconnect_interval=0.05,
    )
    async with anyio.create_task_group() as tg:
        async with runtime(sockdir) as rt:
            tg.start_soon(stub.serve_async)
            await rt.wait_for_plugins(1)
        # the runtime is gone; the stub keeps dialling until a new one listens
        await anyio.sleep(0.2)
        async with runtime(sockdir) as rt2:
            [info] = await rt2.wait_for_plugins(1)
            assert info.name == "10-sticky"
            rpl = await rt2.create_container(POD, ctr())
            assert [e.key for e in rpl.adjust.env] == ["R"]
            stub.stop()
    assert stub.connections == 2


async def test_preinstalled_python_plugin(sockdir: Path) -> None:
    plugins, conf = sockdir / "plugins", sockdir / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    python_plugin_executable(plugins, "10-adjuster", example_source("adjuster_plugin.py"))
    (conf / "10-adjuster.conf").write_text("memory_limit=2097152\n")
    async with Runtime(
        "plugwire-test",
        "0.1",
        socket_path=None,
        listen=False,
        plugin_path=plugins,
        config_path=conf,
    ) as rt:
        [info] = await rt.wait_for_plugins(1, timeout=20)
        assert (info.name, info.external) == ("10-adjuster", False)
        rpl = await rt.create_container(POD, ctr())
    assert ("ADJUSTED_BY", "adjuster") in [(e.key, e.value) for e in rpl.adjust.env]
    assert rpl.adjust.linux.resources.memory.limit.value == 2097152


async def test_failure_policy_from_configure(sockdir: Path) -> None:
    class Slow:
        async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
            await anyio.sleep(30)

    async with runtime(sockdir, request_timeout=0.3) as rt:
        async with plugins(
            Stub(Slow(), name="kept", idx="10", socket_path=rt.socket_path, keep_connected=True)
        ):
            await rt.wait_for_plugins(1)
            await rt.create_container(POD, ctr())  # times out, carries on...
            assert [p.name for p in rt.plugins] == ["10-kept"]  # ...and keeps the plugin
        with anyio.fail_after(5):
            while rt.plugins:  # noqa: ASYNC110 (the runtime notices the hang-up)
                await anyio.sleep(0.01)
        async with plugins(
            Stub(Slow(), name="strict", idx="20", socket_path=rt.socket_path, fail_request=True)
        ):
            [info] = await rt.wait_for_plugins(1)
            assert info.name == "20-strict"
            with pytest.raises(NriError, match="20-strict failed to handle CreateContainer"):
                await rt.create_container(POD, ctr())
            assert rt.plugins == []


async def test_stub_gives_up_when_the_runtime_never_configures(sockdir: Path) -> None:
    async def register(data: bytes) -> bytes:
        return b""

    path = sockdir / "fake.sock"
    handlers: dict[tuple[str, str], Handler] = {(RUNTIME_SERVICE, "RegisterPlugin"): register}
    async with await anyio.create_unix_listener(path) as listener:

        async def fake_runtime() -> None:
            conn = await listener.accept()
            async with open_session(conn, handlers, plugin_side=False) as session:
                await session.closed.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(fake_runtime)
            stub = Stub(
                EnvPlugin("A", "1"),
                name="p",
                idx="10",
                socket_path=path,
                registration_timeout=0.3,
            )
            with pytest.raises(PluginTimeoutError, match="did not configure the plugin"):
                await stub.serve_async()


async def test_errors_propagate_unwrapped(sockdir: Path) -> None:
    plugins = sockdir / "plugins"
    plugins.mkdir()
    bad = plugins / "notanindex-plugin"
    bad.write_text("#!/bin/sh\n")
    bad.chmod(0o755)
    # a bad pre-installed plugin name aborts start-up, as upstream's discovery does
    with pytest.raises(ConfigError, match="failed to discover plugins"):
        async with Runtime("t", "0", socket_path=None, listen=False, plugin_path=plugins):
            pass
    bad.unlink()
    # an error in the body leaves the runtime as it is, not in an ExceptionGroup
    with pytest.raises(NriError, match="from the body"):
        async with runtime(sockdir) as rt:
            assert rt.socket_path is not None and rt.socket_path.exists()
            raise NriError("from the body")
    assert not (sockdir / "run" / "nri.sock").exists()


class AllEvents:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self.seen.append("run_pod_sandbox")

    async def update_pod_sandbox(
        self, pod: pb.PodSandbox, overhead: pb.LinuxResources, res: pb.LinuxResources
    ) -> None:
        self.seen.append(f"update_pod_sandbox:{res.memory.limit.value}")

    async def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self.seen.append("post_update_pod_sandbox")

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self.seen.append("stop_pod_sandbox")

    async def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        self.seen.append("remove_pod_sandbox")

    async def post_create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        self.seen.append("post_create_container")

    async def start_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        self.seen.append("start_container")

    async def post_start_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        self.seen.append("post_start_container")

    async def post_update_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        self.seen.append("post_update_container")

    async def remove_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        self.seen.append(f"remove_container:{c.id}")

    async def shutdown(self) -> None:
        self.seen.append("shutdown")


async def test_every_event_reaches_the_plugin(sockdir: Path) -> None:
    plugin = AllEvents()
    limit = pb.LinuxResources()
    limit.memory.limit.value = 99
    async with (
        runtime(sockdir) as rt,
        plugins(Stub(plugin, name="all", idx="10", socket_path=rt.socket_path)),
    ):
        [info] = await rt.wait_for_plugins(1)
        assert Event(Event.CREATE_CONTAINER).bit & info.events == 0
        await rt.run_pod_sandbox(POD)
        await rt.update_pod_sandbox(POD, None, limit)
        await rt.post_update_pod_sandbox(POD)
        await rt.post_create_container(POD, ctr())
        await rt.start_container(POD, ctr())
        await rt.post_start_container(POD, ctr())
        await rt.post_update_container(POD, ctr())
        await rt.remove_container(POD, ctr("c9"))
        await rt.stop_pod_sandbox(POD)
        await rt.remove_pod_sandbox(POD)
        # events the plugin does not handle are not sent at all
        rpl = await rt.create_container(POD, ctr())
        assert not rpl.adjust.env
    assert plugin.seen == [
        "run_pod_sandbox",
        "update_pod_sandbox:99",
        "post_update_pod_sandbox",
        "post_create_container",
        "start_container",
        "post_start_container",
        "post_update_container",
        "remove_container:c9",
        "stop_pod_sandbox",
        "remove_pod_sandbox",
    ]


async def test_plugin_that_cannot_split_sync_is_refused(sockdir: Path) -> None:
    pad = "p" * 8192
    ctrs = [pb.Container(id=f"c{i}", annotations={"pad": pad}) for i in range(700)]

    async def sync(callback: SyncCallback) -> None:
        await callback([], ctrs)

    async def configure(data: bytes) -> bytes:
        return pb.ConfigureResponse(events=Event.CREATE_CONTAINER.bit).SerializeToString()

    async def synchronize(data: bytes) -> bytes:
        return pb.SynchronizeResponse(more=False).SerializeToString()  # ignores "more"

    handlers: dict[tuple[str, str], Handler] = {
        (PLUGIN_SERVICE, "Configure"): configure,
        (PLUGIN_SERVICE, "Synchronize"): synchronize,
    }
    async with runtime(sockdir, sync=sync) as rt:
        assert rt.socket_path is not None
        trunk = await anyio.connect_unix(rt.socket_path)
        async with open_session(trunk, handlers, plugin_side=True) as session:
            req = pb.RegisterPluginRequest(plugin_name="old", plugin_idx="10")
            await session.client.call(RUNTIME_SERVICE, "RegisterPlugin", req.SerializeToString())
            with anyio.fail_after(10):
                await session.closed.wait()  # the runtime hangs up on it
        assert rt.plugins == []


def test_sync_chunk_shrinking_follows_upstream() -> None:
    from plugwire.ttrpc import OversizedMessageError
    from plugwire.ttrpc.nri.registration import _shrink

    def too_big(size: int, limit: int = 4 << 20) -> OversizedMessageError:
        return OversizedMessageError("too big", size=size, limit=limit)

    # factor = limit/size, capped at 0.9
    assert _shrink(100, 1000, too_big(8 << 20)) == (50, 500)
    assert _shrink(100, 1000, too_big(5 << 20)) == (80, 800)
    assert _shrink(100, 1000, too_big((4 << 20) + 1)) == (90, 900)
    # never below 8 objects per message; give up at 8
    assert _shrink(10, 10, too_big(64 << 20)) == (4, 4)
    assert _shrink(4, 4, too_big(64 << 20)) == (-1, -1)
