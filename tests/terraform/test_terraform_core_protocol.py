"""Issue 21 (core) at the protocol level, where the terraform CLI cannot send the
input: a client that does not allow write-only attributes or deferral, identity data
of an unknown version, a required identity attribute left null, and the identity,
write-only and deferral fields of each RPC on protocols 5 and 6.

The terraform-plugin-framework provider of the same shape (the Go harness provider,
served on protocol 6) answers the same requests as the reference: plugwire's
diagnostics must point at the same attribute paths.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from provider_support import THING, Tf, anyio_backend, diag_paths, diag_texts, launch

from plugwire.grpc.terraform import cty

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

IDENTITY = cty.Object({"name": cty.String})
PROVIDER = cty.Object({"endpoint": cty.String})
ECHO = cty.Object({"input": cty.String, "output": cty.String})


def _thing(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict.fromkeys(THING.attributes)
    base.update(kw)
    return base


@pytest.fixture(params=["python5", "python6", "go6"])
async def tf(request: pytest.FixtureRequest) -> AsyncIterator[Tf]:
    if request.param == "go6":
        go: Path = request.getfixturevalue("go_provider")
        async with launch(6, [str(go)]) as t:
            yield t
    else:
        async with launch(int(request.param[-1])) as t:
            yield t


@pytest.fixture(params=[5, 6], ids=["python5", "python6"])
async def pytf(request: pytest.FixtureRequest) -> AsyncIterator[Tf]:
    """plugwire's provider only (where it is stricter than the Go framework)."""
    async with launch(request.param) as t:
        yield t


def _errors(diagnostics: Any) -> list[Any]:
    return [d for d in diagnostics if d.severity == 1]


def _caps(tf: Tf, **kw: bool) -> Any:
    return tf.pb.ClientCapabilities(**kw)


async def _configure(tf: Tf, endpoint: Any = None, **caps: bool) -> None:
    resp = await tf.call(
        "ConfigureProvider",
        terraform_version="1.16.4",
        config=tf.dv({"endpoint": endpoint}, PROVIDER),
        client_capabilities=_caps(tf, **caps),
    )
    assert not _errors(resp.diagnostics), diag_texts(resp.diagnostics)


async def test_write_only_value_from_a_client_that_does_not_allow_it(tf: Tf) -> None:
    config = tf.dv(_thing(name="a", password_wo="hunter2hunter2"), THING)
    denied = await tf.call(
        "ValidateResourceConfig",
        type_name="example_thing",
        config=config,
        client_capabilities=_caps(tf, write_only_attributes_allowed=False),
    )
    assert [d.severity for d in denied.diagnostics] == [1], diag_texts(denied.diagnostics)
    assert diag_paths(denied.diagnostics) == [["password_wo"]]
    assert "password_wo" in diag_texts(denied.diagnostics)[0]
    allowed = await tf.call(
        "ValidateResourceConfig",
        type_name="example_thing",
        config=config,
        client_capabilities=_caps(tf, write_only_attributes_allowed=True),
    )
    assert not allowed.diagnostics, diag_texts(allowed.diagnostics)


async def test_deprecated_attribute_warning_names_it(tf: Tf) -> None:
    resp = await tf.call(
        "ValidateResourceConfig",
        type_name="example_thing",
        config=tf.dv(_thing(name="a", label="x"), THING),
        client_capabilities=_caps(tf, write_only_attributes_allowed=True),
    )
    assert [(d.severity, d.summary, d.detail) for d in resp.diagnostics] == [
        (2, "Attribute Deprecated", "label is deprecated: use tags instead.")
    ]
    assert diag_paths(resp.diagnostics) == [["label"]]


async def test_identity_and_write_only_through_plan_apply_read(tf: Tf) -> None:
    await _configure(tf)
    config = _thing(name="a", password_wo="hunter2hunter2")
    null = tf.dv(None, THING)
    plan = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=null,
        proposed_new_state=tf.dv(config, THING),
        config=tf.dv(config, THING),
        client_capabilities=_caps(tf, write_only_attributes_allowed=True),
    )
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    planned = tf.value(plan.planned_state, THING)
    assert planned["password_wo"] is None  # never in a plan
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
    assert state["password_wo"] is None and state["id"] == "thing-a"
    assert tf.value(applied.new_identity.identity_data, IDENTITY) == {"name": "a"}
    read = await tf.call(
        "ReadResource",
        type_name="example_thing",
        current_state=applied.new_state,
        current_identity=applied.new_identity,
        private=applied.private,
    )
    assert not read.diagnostics, diag_texts(read.diagnostics)
    assert tf.value(read.new_identity.identity_data, IDENTITY) == {"name": "a"}
    # An update plan carries the identity forward.
    update = _thing(**{**state, "size": 2, "password_wo": None})
    plan2 = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=applied.new_state,
        proposed_new_state=tf.dv(update, THING),
        config=tf.dv(_thing(name="a", size=2), THING),
        prior_identity=applied.new_identity,
        prior_private=applied.private,
    )
    assert not plan2.diagnostics, diag_texts(plan2.diagnostics)
    assert tf.value(plan2.planned_identity.identity_data, IDENTITY) == {"name": "a"}
    # A short write-only password reaches create, which rejects it by path.
    short = _thing(name="b", password_wo="short")
    bad = await tf.call(
        "ApplyResourceChange",
        type_name="example_thing",
        prior_state=null,
        planned_state=tf.dv(_thing(name="b", size=1, id=cty.UNKNOWN, created=cty.UNKNOWN), THING),
        config=tf.dv(short, THING),
    )
    assert diag_paths(_errors(bad.diagnostics)) == [["password_wo"]]


async def test_import_by_identity(tf: Tf) -> None:
    await _configure(tf)
    resp = await tf.call(
        "ImportResourceState",
        type_name="example_thing",
        identity=tf.pb.ResourceIdentityData(identity_data=tf.dv({"name": "g"}, IDENTITY)),
    )
    assert not resp.diagnostics, diag_texts(resp.diagnostics)
    (imported,) = resp.imported_resources
    assert tf.value(imported.state, THING)["id"] == "thing-g"
    assert tf.value(imported.identity.identity_data, IDENTITY) == {"name": "g"}


async def test_import_by_identity_without_required_attribute_names_it(pytf: Tf) -> None:
    # terraform core rejects this before calling (see the CLI test); the Go framework
    # trusts it and imports an empty name, plugwire answers with a diagnostic.
    tf = pytf
    await _configure(tf)
    resp = await tf.call(
        "ImportResourceState",
        type_name="example_thing",
        identity=tf.pb.ResourceIdentityData(identity_data=tf.dv({"name": None}, IDENTITY)),
    )
    errors = _errors(resp.diagnostics)
    assert errors and not resp.imported_resources
    assert diag_paths(errors) == [["name"]]
    assert errors[0].summary == "Missing required identity attribute"


async def test_unknown_identity_version_is_a_diagnostic(tf: Tf) -> None:
    resp = await tf.call(
        "UpgradeResourceIdentity",
        type_name="example_thing",
        version=7,
        raw_identity=tf.pb.RawState(json=json.dumps({"name": "a"}).encode()),
    )
    errors = _errors(resp.diagnostics)
    assert len(errors) == 1, diag_texts(resp.diagnostics)
    assert "7" in errors[0].detail or "7" in errors[0].summary
    assert not resp.upgraded_identity.HasField("identity_data")


async def test_stored_identity_attribute_unknown_to_the_schema_names_it(pytf: Tf) -> None:
    resp = await pytf.call(
        "UpgradeResourceIdentity",
        type_name="example_thing",
        version=0,
        raw_identity=pytf.pb.RawState(json=b'{"name": "a", "region": "eu"}'),
    )
    errors = _errors(resp.diagnostics)
    assert [e.summary for e in errors] == ["Unsupported identity attribute"]
    assert diag_paths(errors) == [["region"]]
    ok = await pytf.call(
        "UpgradeResourceIdentity",
        type_name="example_thing",
        version=0,
        raw_identity=pytf.pb.RawState(json=b'{"name": "a"}'),
    )
    assert not ok.diagnostics
    assert pytf.value(ok.upgraded_identity.identity_data, IDENTITY) == {"name": "a"}


async def test_generate_resource_config(tf: Tf) -> None:
    state = _thing(
        id="thing-a", name="a", size=2, tags={"k": "v"}, secret="", created="now", label="old"
    )
    resp = await tf.call(
        "GenerateResourceConfig", type_name="example_thing", state=tf.dv(state, THING)
    )
    assert not resp.diagnostics, diag_texts(resp.diagnostics)
    assert tf.value(resp.config, THING) == _thing(name="a", size=2, tags={"k": "v"})


async def test_deferred_when_provider_config_unknown(tf: Tf) -> None:
    await _configure(tf, endpoint=cty.UNKNOWN, deferral_allowed=True)
    caps = _caps(tf, deferral_allowed=True, write_only_attributes_allowed=True)
    config = _thing(name="a")
    plan = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=tf.dv(None, THING),
        proposed_new_state=tf.dv(config, THING),
        config=tf.dv(config, THING),
        client_capabilities=caps,
    )
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    assert plan.deferred.reason == tf.pb.Deferred.PROVIDER_CONFIG_UNKNOWN
    data = await tf.call(
        "ReadDataSource",
        type_name="example_echo",
        config=tf.dv({"input": "x", "output": None}, ECHO),
        client_capabilities=caps,
    )
    assert not data.diagnostics, diag_texts(data.diagnostics)
    assert data.deferred.reason == tf.pb.Deferred.PROVIDER_CONFIG_UNKNOWN


async def test_unknown_provider_config_without_deferral_plans_normally(tf: Tf) -> None:
    await _configure(tf, endpoint=cty.UNKNOWN, deferral_allowed=False)
    config = _thing(name="a")
    plan = await tf.call(
        "PlanResourceChange",
        type_name="example_thing",
        prior_state=tf.dv(None, THING),
        proposed_new_state=tf.dv(config, THING),
        config=tf.dv(config, THING),
        client_capabilities=_caps(tf),
    )
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    assert not plan.HasField("deferred")
    assert isinstance(tf.value(plan.planned_state, THING)["id"], cty.Unknown)
