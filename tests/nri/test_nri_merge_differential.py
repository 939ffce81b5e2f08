"""Differential test of the merge: random plugin replies through upstream's adaptation
and through plugwire's runtime must give the same merged result (or the same error).

Three plugwire plugins are connected to both runtimes at once; for each seeded
scenario they answer CreateContainer with scripted adjustments and updates (env,
mounts, annotations, resources, rlimits, devices, hooks, args, removals, updates of
other containers, ignore_failure), drawn from small key pools so that conflicts and
removals happen often.
"""

from __future__ import annotations

import os
import random
from typing import Any

import anyio
import pytest
from nri_support import GoRuntime, container, from_dict, pod, to_dict

from plugwire.ttrpc.nri import Adjustment, ConflictError, NriError, Runtime, Stub, Update
from plugwire.ttrpc.nri.api import pb

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SCENARIOS = int(os.environ.get("PLUGWIRE_NRI_DIFF_SCENARIOS", "60"))
NAMES = [("10", "alpha"), ("20", "beta"), ("30", "gamma")]


def random_reply(rng: random.Random) -> tuple[Adjustment, list[Update]]:
    adj = Adjustment()
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(["A", "B", "C"])
        if rng.random() < 0.25:
            adj.remove_env(key)
        else:
            adj.add_env(key, str(rng.randint(0, 9)))
    if rng.random() < 0.4:
        dst = rng.choice(["/m1", "/m2"])
        if rng.random() < 0.3:
            adj.remove_mount(dst)
        else:
            adj.add_mount(dst, f"/src{rng.randint(0, 9)}")
    if rng.random() < 0.3:
        adj.add_annotation(rng.choice(["x", "y"]), "v")
    if rng.random() < 0.3:
        adj.set_memory_limit(rng.randint(1, 9) << 20)
    if rng.random() < 0.3:
        adj.set_cpu_shares(rng.randint(2, 1024))
    if rng.random() < 0.2:
        adj.add_rlimit(rng.choice(["RLIMIT_NOFILE", "RLIMIT_NPROC"]), 100, 50)
    if rng.random() < 0.2:
        path = rng.choice(["/dev/a", "/dev/b"])
        if rng.random() < 0.3:
            adj.remove_device(path)
        else:
            adj.add_device(path, "c", 1, rng.randint(1, 9))
    if rng.random() < 0.2:
        adj.add_hook("prestart", f"/hook{rng.randint(0, 9)}")
    if rng.random() < 0.15:
        if rng.random() < 0.5:
            adj.set_args(["run", str(rng.randint(0, 9))])
        else:
            adj.update_args(["upd", str(rng.randint(0, 9))])
    if rng.random() < 0.15:
        adj.add_unified(rng.choice(["memory.high", "cpu.weight"]), str(rng.randint(1, 9)))
    updates = []
    if rng.random() < 0.3:
        u = Update(rng.choice(["other1", "other2"]), ignore_failure=rng.random() < 0.5)
        u.set_cpu_shares(rng.randint(2, 99))
        updates.append(u)
    return adj, updates


def random_updates(rng: random.Random, target: str) -> list[Update]:
    updates = []
    for _ in range(rng.randint(0, 2)):
        u = Update(rng.choice([target, "other1", "other2"]), ignore_failure=rng.random() < 0.4)
        if rng.random() < 0.6:
            u.set_cpu_shares(rng.randint(2, 99))
        if rng.random() < 0.4:
            u.set_memory_limit(rng.randint(1, 9) << 20)
        if rng.random() < 0.2:
            u.add_unified("memory.high", str(rng.randint(1, 9)))
        updates.append(u)
    return updates


class Scripted:
    def __init__(self) -> None:
        self.reply: tuple[Adjustment, list[Update]] = (Adjustment(), [])
        self.updates: list[Update] = []

    async def create_container(
        self, p: pb.PodSandbox, c: pb.Container
    ) -> tuple[Adjustment, list[Update]]:
        return self.reply

    async def update_container(
        self, p: pb.PodSandbox, c: pb.Container, r: pb.LinuxResources
    ) -> list[Update]:
        return self.updates

    async def stop_container(self, p: pb.PodSandbox, c: pb.Container) -> list[Update]:
        return self.updates


async def test_random_replies_merge_like_upstream(go_runtime: GoRuntime, sockdir: Any) -> None:
    scripted = [Scripted() for _ in NAMES]
    go_sock, py_sock = sockdir / "go.sock", sockdir / "py.sock"
    await go_runtime.ok("start", socket=str(go_sock))
    request = {
        "pod": pod(),
        "container": container(
            "c1",
            env=["A=0", "KEEP=1"],
            mounts=[{"destination": "/m1", "source": "/orig", "type": "bind"}],
            annotations={"x": "orig"},
        ),
    }
    stubs = [
        Stub(plugin, name=name, idx=idx, socket_path=sock)
        for sock in (go_sock, py_sock)
        for plugin, (idx, name) in zip(scripted, NAMES, strict=True)
    ]
    async with (
        Runtime("plugwire", "0.1", socket_path=py_sock) as rt,
        anyio.create_task_group() as tg,
    ):
        for stub in stubs:
            tg.start_soon(stub.serve_async)
        await go_runtime.ok("wait_plugins", count=len(NAMES), timeout=15)
        await rt.wait_for_plugins(len(NAMES))
        outcomes = {"merged": 0, "conflict": 0}
        for seed in range(SCENARIOS):
            rng = random.Random(seed)
            for plugin in scripted:
                plugin.reply = random_reply(rng)
            go = await go_runtime.cmd("create_container", request=request)
            try:
                rpl = await rt.create_container(
                    from_dict(pb.PodSandbox, request["pod"]),
                    from_dict(pb.Container, request["container"]),
                )
            except (ConflictError, NriError) as exc:
                assert not go["ok"], f"seed {seed}: Go merged, plugwire failed: {exc}"
                assert go["error"] == exc.message, f"seed {seed}"
                outcomes["conflict"] += 1
            else:
                assert go["ok"], f"seed {seed}: plugwire merged, Go failed: {go['error']}"
                got = to_dict(rpl)
                assert got == go["result"], f"seed {seed}"
                outcomes["merged"] += 1
        # UpdateContainer and StopContainer merges
        resources = {"memory": {"limit": {"value": "4096"}}, "cpu": {"shares": {"value": "7"}}}
        for seed in range(SCENARIOS):
            rng = random.Random(10_000 + seed)
            for plugin in scripted:
                plugin.updates = random_updates(rng, "c1")
            for op in ("update_container", "stop_container"):
                req = dict(request)
                if op == "update_container":
                    req["linux_resources"] = resources
                go = await go_runtime.cmd(op, request=req)
                p = from_dict(pb.PodSandbox, request["pod"])
                c = from_dict(pb.Container, request["container"])
                try:
                    if op == "update_container":
                        res = from_dict(pb.LinuxResources, resources)
                        out: Any = await rt.update_container(p, c, res)
                    else:
                        out = await rt.stop_container(p, c)
                except (ConflictError, NriError) as exc:
                    assert not go["ok"], f"{op} seed {seed}: plugwire failed: {exc}"
                    assert go["error"] == exc.message, f"{op} seed {seed}"
                    outcomes["conflict"] += 1
                else:
                    assert go["ok"], f"{op} seed {seed}: Go failed: {go['error']}"
                    got = to_dict(out)
                    assert got == go.get("result", {}), f"{op} seed {seed}"
                    outcomes["merged"] += 1
        for stub in stubs:
            stub.stop()
    # the scenarios exercise both outcomes
    assert outcomes["merged"] >= 5 and outcomes["conflict"] >= 5, outcomes
