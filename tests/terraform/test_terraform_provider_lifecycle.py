"""The example provider over tfplugin5 and tfplugin6: schema, plan, apply, read, import,
upgrade, data source, ephemeral resource and function, through a real go-plugin launch
with Terraform's handshake and AutoMTLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from provider_support import ECHO, THING, TOKEN, Tf, anyio_backend, diag_texts, launch

from plugwire.grpc.terraform import cty

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]


@pytest.fixture(params=[5, 6], ids=["tfplugin5", "tfplugin6"])
async def tf(request: pytest.FixtureRequest) -> AsyncIterator[Tf]:
    async with launch(request.param) as tf:
        yield tf


def _thing(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": None,
        "name": None,
        "size": None,
        "tags": None,
        "secret": None,
        "created": None,
        "password_wo": None,
        "label": None,
    }
    base.update(kw)
    return base


async def test_schema_and_metadata(tf: Tf) -> None:
    resp = await tf.call("GetProviderSchema")
    assert not resp.diagnostics
    thing = resp.resource_schemas["example_thing"]
    assert thing.version == 1
    attrs = {a.name: a for a in thing.block.attributes}
    assert sorted(attrs) == [
        "created",
        "id",
        "label",
        "name",
        "password_wo",
        "secret",
        "size",
        "tags",
    ]
    assert attrs["name"].required and not attrs["name"].optional
    assert attrs["id"].computed and not attrs["id"].optional
    assert attrs["size"].optional and attrs["size"].computed  # a default makes it computed
    assert attrs["secret"].sensitive
    assert cty.type_from_json(attrs["tags"].type) == cty.Map(cty.String)
    assert json.loads(attrs["size"].type) == "number"
    assert sorted(resp.data_source_schemas) == ["example_echo"]
    assert sorted(resp.ephemeral_resource_schemas) == ["example_token"]
    upper = resp.functions["upper"]
    assert [p.name for p in upper.parameters] == ["s"]
    assert json.loads(getattr(upper, "return").type) == "string"
    caps = resp.server_capabilities
    assert caps.move_resource_state and caps.generate_resource_config
    assert caps.plan_destroy and caps.get_provider_schema_optional

    meta = await tf.call("GetMetadata")
    assert [r.type_name for r in meta.resources] == ["example_thing"]
    assert [d.type_name for d in meta.data_sources] == ["example_echo"]
    assert [f.name for f in meta.functions] == ["upper"]


async def test_create_plan_apply_read_update_replace(tf: Tf) -> None:
    await tf.call("ConfigureProvider", terraform_version="1.13.3", config=tf.dv({}, cty.Object({})))
    config = _thing(name="a", tags={"k": "v"})
    null = tf.dv(None, THING)
    # Plan a create: defaults filled, computed values unknown.
    plan = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=null,
        proposed_new_state=tf.dv(config, THING),
        config=tf.dv(config, THING),
    )
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    planned = tf.value(plan.planned_state, THING)
    assert planned["size"] == 1
    assert planned["id"] == cty.UNKNOWN and planned["created"] == cty.UNKNOWN
    assert planned["name"] == "a" and planned["tags"] == {"k": "v"}
    assert not plan.requires_replace

    applied = await tf.call(
        "ApplyResourceChange",
        type_name="example_thing",
        prior_state=null,
        planned_state=plan.planned_state,
        config=tf.dv(config, THING),
        planned_private=plan.planned_private,
    )
    assert not applied.diagnostics, diag_texts(applied.diagnostics)
    state = tf.value(applied.new_state, THING)
    assert state["id"] == "thing-a" and state["created"] and state["size"] == 1

    read = await tf.call("ReadResource", type_name="example_thing", current_state=applied.new_state)
    assert tf.value(read.new_state, THING) == state

    # Plan again with the same configuration: no change (computed values kept).
    proposed = {**state, "tags": {"k": "v"}}
    again = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=applied.new_state,
        proposed_new_state=tf.dv(proposed, THING),
        config=tf.dv(config, THING),
    )
    assert tf.value(again.planned_state, THING) == state
    assert not again.requires_replace

    # In-place update of size: id kept (UseStateForUnknown), created unknown again.
    config2 = {**config, "size": 3}
    upd = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=applied.new_state,
        proposed_new_state=tf.dv({**state, "size": 3}, THING),
        config=tf.dv(config2, THING),
    )
    planned2 = tf.value(upd.planned_state, THING)
    assert planned2["id"] == "thing-a" and planned2["size"] == 3
    assert planned2["created"] == cty.UNKNOWN
    assert not upd.requires_replace
    applied2 = await tf.call(
        "ApplyResourceChange",
        type_name="example_thing",
        prior_state=applied.new_state,
        planned_state=upd.planned_state,
        config=tf.dv(config2, THING),
    )
    assert not applied2.diagnostics, diag_texts(applied2.diagnostics)
    state2 = tf.value(applied2.new_state, THING)
    assert state2["size"] == 3 and state2["created"] == state["created"]

    # Changing the name requires a replacement, naming the attribute.
    config3 = {**config2, "name": "b"}
    rep = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=applied2.new_state,
        proposed_new_state=tf.dv({**state2, "name": "b"}, THING),
        config=tf.dv(config3, THING),
    )
    assert [[s.attribute_name for s in p.steps] for p in rep.requires_replace] == [["name"]]

    # Destroy: planned null, apply deletes.
    gone = await tf.call(
        "ApplyResourceChange",
        type_name="example_thing",
        prior_state=applied2.new_state,
        planned_state=null,
        config=null,
    )
    assert not gone.diagnostics
    assert tf.value(gone.new_state, THING) is None


async def test_import_upgrade_move(tf: Tf) -> None:
    imp = await tf.call("ImportResourceState", type_name="example_thing", id="thing-x")
    assert not imp.diagnostics, diag_texts(imp.diagnostics)
    [res] = imp.imported_resources
    assert res.type_name == "example_thing"
    assert tf.value(res.state, THING) == _thing(id="thing-x")
    # Terraform reads the imported resource next: the read fills it in.
    read = await tf.call("ReadResource", type_name="example_thing", current_state=res.state)
    assert tf.value(read.new_state, THING) == _thing(
        id="thing-x", name="x", size=1, created="imported"
    )
    bad = await tf.call("ImportResourceState", type_name="example_thing", id="x")
    assert not bad.imported_resources
    [d] = bad.diagnostics
    assert d.summary == "Invalid import id" and d.attribute.steps[0].attribute_name == "id"

    # Version 0 stored size as a string; the resource's upgrade_state converts it.
    raw0 = {"id": "thing-y", "name": "y", "size": "2.5", "created": "t", "removed_attr": 1}
    up = await tf.call(
        "UpgradeResourceState",
        type_name="example_thing",
        version=0,
        raw_state=tf.pb.RawState(json=json.dumps(raw0).encode()),
    )
    assert not up.diagnostics, diag_texts(up.diagnostics)
    assert tf.value(up.upgraded_state, THING) == _thing(
        id="thing-y", name="y", size=Decimal("2.5"), created="t"
    )
    # Current version: decoded as is (attributes missing from an old writer are null).
    raw1 = {"id": "thing-z", "name": "z", "size": 4, "created": "t"}
    same = await tf.call(
        "UpgradeResourceState",
        type_name="example_thing",
        version=1,
        raw_state=tf.pb.RawState(json=json.dumps(raw1).encode()),
    )
    assert not same.diagnostics
    assert tf.value(same.upgraded_state, THING) == _thing(**raw1)

    # The example does not accept moves: a diagnostic naming the source.
    move = await tf.call(
        "MoveResourceState",
        source_provider_address="registry.terraform.io/hashicorp/other",
        source_type_name="other_thing",
        source_schema_version=0,
        source_state=tf.pb.RawState(json=b'{"id": "1"}'),
        target_type_name="example_thing",
    )
    assert any("other_thing" in t for t in diag_texts(move.diagnostics))


async def test_data_source_ephemeral_function(tf: Tf) -> None:
    cfg = {"input": "hello", "output": None}
    read = await tf.call("ReadDataSource", type_name="example_echo", config=tf.dv(cfg, ECHO))
    assert not read.diagnostics
    assert tf.value(read.state, ECHO) == {"input": "hello", "output": "hello"}

    opened = await tf.call(
        "OpenEphemeralResource",
        type_name="example_token",
        config=tf.dv({"name": "n", "token": None}, TOKEN),
    )
    assert not opened.diagnostics, diag_texts(opened.diagnostics)
    result = tf.value(opened.result, TOKEN)
    assert result["name"] == "n" and result["token"].startswith("tok-")
    assert opened.private == b"n"
    closed = await tf.call("CloseEphemeralResource", type_name="example_token", private=b"n")
    assert not closed.diagnostics

    funcs = await tf.call("GetFunctions")
    assert sorted(funcs.functions) == ["upper"]
    out = await tf.call("CallFunction", name="upper", arguments=[tf.dv("abc", cty.String)])
    assert not out.error.text
    assert tf.value(out.result, cty.String) == "ABC"
    bad = await tf.call("CallFunction", name="upper", arguments=[tf.dv("a", cty.String)] * 2)
    assert bad.error.text and bad.error.function_argument == 1
