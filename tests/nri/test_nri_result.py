"""The adjustment merge (a port of pkg/adaptation/result.go), without any wire."""

from __future__ import annotations

from typing import Any

import pytest

from plugwire.ttrpc.nri import Adjustment, ConflictError, NriError, Update
from plugwire.ttrpc.nri.api import pb
from plugwire.ttrpc.nri.result import Result


def create(**container: Any) -> tuple[pb.CreateContainerRequest, Result]:
    req = pb.CreateContainerRequest(
        pod=pb.PodSandbox(id="pod"), container=pb.Container(id="c1", **container)
    )
    return req, Result.for_create(req)


def reply(adjust: Adjustment | None = None, *updates: Update) -> pb.CreateContainerResponse:
    rpl = pb.CreateContainerResponse(update=[u.build() for u in updates])
    if adjust is not None:
        rpl.adjust.CopyFrom(adjust.build())
    return rpl


def test_env_merge_updates_request_and_reply() -> None:
    req, result = create(env=["A=1", "B=2", "C=3"])
    result.apply(reply(Adjustment().add_env("A", "x").remove_env("B")), "10-a")
    result.apply(reply(Adjustment().add_env("D", "4")), "20-b")
    rsp = result.create_response()
    assert [(e.key, e.value) for e in rsp.adjust.env] == [("A", "x"), ("D", "4")]
    assert list(req.container.env) == ["C=3", "A=x", "D=4"]
    assert result.owners.owner("c1", pb.Env, "A") == "10-a"


def test_same_field_from_two_plugins_conflicts() -> None:
    _, result = create()
    result.apply(reply(Adjustment().set_memory_limit(1)), "10-a")
    with pytest.raises(ConflictError) as info:
        result.apply(reply(Adjustment().set_memory_limit(2)), "20-b")
    assert str(info.value).startswith('plugins "20-b" and "10-a" both tried to set MemLimit')
    assert info.value.field == "MemLimit"


def test_remover_may_set_again_but_others_may_not() -> None:
    req, result = create(annotations={"k": "orig"})
    result.apply(reply(Adjustment().add_annotation("k", "a")), "10-a")
    with pytest.raises(ConflictError):
        result.apply(reply(Adjustment().add_annotation("k", "b")), "20-b")
    # upstream: removing and re-adding in one reply takes the key over...
    result.apply(reply(Adjustment().remove_annotation("k").add_annotation("k", "c")), "30-c")
    assert req.container.annotations["k"] == "c"
    assert result.owners.owner("c1", pb.Annotations, "k") == "30-c"
    # ...and the new owner's claim then conflicts with everybody else
    with pytest.raises(ConflictError, match='"40-d" and "30-c"'):
        result.apply(reply(Adjustment().add_annotation("k", "d")), "40-d")

    _, result = create()
    result.apply(reply(Adjustment().add_mount("/m", "/src")), "10-a")
    # 20-b removes the mount; afterwards only 20-b may set it
    result.apply(reply(Adjustment().remove_mount("/m")), "20-b")
    assert result.owners.owner("c1", pb.Mounts, "/m") == "-20-b"
    with pytest.raises(ConflictError, match='"30-c" and "20-b"'):
        result.apply(reply(Adjustment().add_mount("/m", "/other")), "30-c")
    result.apply(reply(Adjustment().add_mount("/m", "/mine")), "20-b")
    # as upstream, the earlier removal marker stays in the reply before the new mount
    mounts = result.create_response().adjust.mounts
    assert [(m.destination, m.source) for m in mounts] == [("-/m", ""), ("/m", "/mine")]


def test_hooks_accumulate_and_args_can_be_overridden() -> None:
    req, result = create(args=["orig"])
    result.apply(reply(Adjustment().add_hook("prestart", "/h1").set_args(["a"])), "10-a")
    result.apply(reply(Adjustment().add_hook("prestart", "/h2")), "20-b")
    with pytest.raises(ConflictError, match="Args"):
        result.apply(reply(Adjustment().set_args(["b"])), "30-c")
    result.apply(reply(Adjustment().update_args(["c"])), "40-d")
    rsp = result.create_response()
    assert [h.path for h in rsp.adjust.hooks.prestart] == ["/h1", "/h2"]
    assert result.owners.owner("c1", pb.OciHooks) == "10-a,20-b"
    assert list(rsp.adjust.args) == ["c"]
    assert list(req.container.args) == ["c"]


def test_updates_merge_and_conflicts_honour_ignore_failure() -> None:
    _, result = create()
    result.apply(reply(None, Update("other").set_cpu_shares(5)), "10-a")
    result.apply(reply(None, Update("other").set_memory_limit(9)), "20-b")
    # conflicting, but the plugin said the failure may be ignored
    result.apply(reply(None, Update("other", ignore_failure=True).set_cpu_shares(7)), "30-c")
    with pytest.raises(ConflictError, match="CPUShares"):
        result.apply(reply(None, Update("other").set_cpu_shares(8)), "40-d")
    [upd] = result.create_response().update
    assert upd.linux.resources.cpu.shares.value == 5
    assert upd.linux.resources.memory.limit.value == 9


def test_updating_the_container_being_created_is_refused() -> None:
    _, result = create()
    with pytest.raises(NriError, match='asked update of "c1" during creation'):
        result.apply(reply(None, Update("c1").set_cpu_shares(1)), "10-a")


def test_update_request_result_puts_the_requested_container_last() -> None:
    req = pb.UpdateContainerRequest(container=pb.Container(id="c1"))
    req.linux_resources.memory.limit.value = 100
    result = Result.for_update(req)
    rpl = pb.UpdateContainerResponse(
        update=[Update("c1").set_cpu_shares(3).build(), Update("c2").set_cpu_shares(4).build()]
    )
    result.apply(rpl, "10-a")
    out = result.update_response()
    assert [u.container_id for u in out.update] == ["c2", "c1"]
    assert out.update[1].linux.resources.memory.limit.value == 100
    assert out.update[1].linux.resources.cpu.shares.value == 3
    assert req.linux_resources.cpu.shares.value == 3


def test_owners_export_for_validators() -> None:
    _, result = create()
    result.apply(reply(Adjustment().add_env("E", "1").set_cpu_shares(2)), "10-a")
    owners = result.owners.to_proto().owners["c1"]
    assert owners.compound[pb.Env].owners["E"] == "10-a"
    assert owners.simple[pb.CPUShares] == "10-a"
