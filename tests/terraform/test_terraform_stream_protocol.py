"""Actions and list resources over tfplugin5 and tfplugin6, through a real go-plugin
launch of the ``ops`` example provider (Terraform's handshake, AutoMTLS): schemas,
validation, PlanAction, the InvokeAction stream (progress, diagnostics, StopProvider
cancelling it) and the ListResource stream (identity, full objects, limits, errors)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from provider_support import Tf, anyio_backend, diag_paths, diag_texts, launch

from plugwire.core.errors import ConfigError
from plugwire.grpc.terraform import (
    Action,
    IdentityAttribute,
    IdentitySchema,
    ListResource,
    Provider,
    Resource,
    cty,
)

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

OPS = [sys.executable, "-m", "plugwire.grpc.terraform.examples.ops"]
REBOOT = cty.Object(
    {"server": cty.String, "steps": cty.Number, "delay": cty.Number, "fail": cty.Bool}
)
LIST_CONFIG = cty.Object({"prefix": cty.String, "count": cty.Number})
SERVER = cty.Object({"id": cty.String, "name": cty.String, "size": cty.Number})
IDENTITY = cty.Object({"name": cty.String})


@pytest.fixture
def ops_log(tmp_path: Path) -> Path:
    """What the provider did (OPS_LOG), one line each."""
    return tmp_path / "ops.log"


@pytest.fixture(params=[5, 6], ids=["tfplugin5", "tfplugin6"])
async def tf(request: pytest.FixtureRequest, ops_log: Path) -> AsyncIterator[Tf]:
    async with launch(request.param, OPS, env={"OPS_LOG": str(ops_log)}) as tf:
        yield tf


def _log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _reboot(**kw: Any) -> dict[str, Any]:
    return {"server": None, "steps": None, "delay": None, "fail": None, **kw}


async def _events(call: Any) -> list[Any]:
    return [event async for event in call]


async def _first(call: Any) -> tuple[Any, AsyncIterator[Any]]:
    """The first event of a stream, and an iterator over the rest."""
    events = aiter(call)
    return await anext(events), events


async def test_schemas_metadata_and_identity(tf: Tf) -> None:
    schema = await tf.call("GetProviderSchema")
    assert not schema.diagnostics, diag_texts(schema.diagnostics)
    assert sorted(schema.action_schemas) == ["ops_reboot"]
    reboot = {a.name: a for a in schema.action_schemas["ops_reboot"].schema.block.attributes}
    assert sorted(reboot) == ["delay", "fail", "server", "steps"]
    assert reboot["server"].required and reboot["steps"].optional
    assert sorted(schema.list_resource_schemas) == ["ops_server"]
    listed = {a.name: a for a in schema.list_resource_schemas["ops_server"].block.attributes}
    assert sorted(listed) == ["count", "prefix"] and listed["prefix"].required
    meta = await tf.call("GetMetadata")
    assert [a.type_name for a in meta.actions] == ["ops_reboot"]
    assert [r.type_name for r in meta.list_resources] == ["ops_server"]
    ids = await tf.call("GetResourceIdentitySchemas")
    server = ids.identity_schemas["ops_server"]
    assert server.version == 0
    [name] = server.identity_attributes
    assert (name.name, name.required_for_import) == ("name", True)
    assert cty.type_from_json(name.type) == cty.String


async def test_validate_and_plan_action(tf: Tf) -> None:
    ok = await tf.call(
        "ValidateActionConfig", action_type="ops_reboot", config=tf.dv(_reboot(server="a"), REBOOT)
    )
    assert not ok.diagnostics, diag_texts(ok.diagnostics)
    bad = await tf.call(
        "ValidateActionConfig",
        action_type="ops_reboot",
        config=tf.dv(_reboot(server="", steps=0), REBOOT),
    )
    texts = diag_texts(bad.diagnostics)
    assert any("server must not be empty" in t for t in texts), texts
    assert ["server"] in diag_paths(bad.diagnostics) and ["steps"] in diag_paths(bad.diagnostics)
    missing = await tf.call(
        "ValidateActionConfig", action_type="ops_nope", config=tf.dv(_reboot(), REBOOT)
    )
    assert any("no action 'ops_nope'" in t for t in diag_texts(missing.diagnostics))
    # PlanAction accepts unknown values and reports the provider's warnings.
    plan = await tf.call(
        "PlanAction",
        action_type="ops_reboot",
        config=tf.dv(_reboot(server="localhost", steps=cty.UNKNOWN), REBOOT),
    )
    [warning] = plan.diagnostics
    assert warning.severity == tf.pb.Diagnostic.WARNING
    assert warning.summary == "Rebooting localhost" and diag_paths([warning]) == [["server"]]


async def test_invoke_action_streams_progress_then_completes(tf: Tf, ops_log: Path) -> None:
    call = tf.stub.InvokeAction(
        tf.pb.InvokeAction.Request(
            action_type="ops_reboot", config=tf.dv(_reboot(server="web", steps=3), REBOOT)
        )
    )
    events = await _events(call)
    kinds = [e.WhichOneof("type") for e in events]
    assert kinds == ["progress", "progress", "progress", "completed"]
    assert [e.progress.message for e in events[:3]] == [
        f"rebooting web: step {i}/3" for i in (1, 2, 3)
    ]
    assert not events[-1].completed.diagnostics
    assert _log(ops_log)[-1] == "invoked web"


async def test_invoke_action_progress_arrives_while_running(tf: Tf) -> None:
    call = tf.stub.InvokeAction(
        tf.pb.InvokeAction.Request(
            action_type="ops_reboot",
            config=tf.dv(_reboot(server="slow", steps=3, delay=0.5), REBOOT),
        )
    )
    started = time.monotonic()
    first, events = await _first(call)
    first_at = time.monotonic() - started
    rest = await _events(events)
    total = time.monotonic() - started
    assert first.progress.message == "rebooting slow: step 1/3"
    # The first step's event arrived before the two others had run (streamed, not batched).
    assert total - first_at >= 0.8, (first_at, total)
    assert rest[-1].WhichOneof("type") == "completed"


async def test_invoke_action_failure_is_a_diagnostic(tf: Tf) -> None:
    call = tf.stub.InvokeAction(
        tf.pb.InvokeAction.Request(
            action_type="ops_reboot",
            config=tf.dv(_reboot(server="db", steps=1, fail=True), REBOOT),
        )
    )
    events = await _events(call)
    assert [e.WhichOneof("type") for e in events] == ["progress", "completed"]
    [diag] = events[-1].completed.diagnostics
    assert diag.severity == tf.pb.Diagnostic.ERROR
    assert (diag.summary, diag.detail) == ("Reboot failed", "db did not come back")
    assert diag_paths([diag]) == [["server"]]
    # Bad input never reaches the action: schema errors and unknown values.
    for config, expected in (
        (_reboot(steps=2), "server"),
        (_reboot(server=cty.UNKNOWN), "not known yet at server"),
    ):
        events = await _events(
            tf.stub.InvokeAction(
                tf.pb.InvokeAction.Request(action_type="ops_reboot", config=tf.dv(config, REBOOT))
            )
        )
        [completed] = events
        texts = diag_texts(completed.completed.diagnostics)
        assert any(expected in t for t in texts), texts
        assert diag_paths(completed.completed.diagnostics) == [["server"]]


async def test_stop_provider_cancels_a_long_invoke(tf: Tf, ops_log: Path) -> None:
    call = tf.stub.InvokeAction(
        tf.pb.InvokeAction.Request(
            action_type="ops_reboot",
            config=tf.dv(_reboot(server="big", steps=600, delay=0.1), REBOOT),
        )
    )
    first, events = await _first(call)
    assert first.progress.message == "rebooting big: step 1/600"
    started = time.monotonic()
    await tf.call("StopProvider")
    rest = await asyncio.wait_for(_events(events), 10)
    assert time.monotonic() - started < 5
    completed = rest[-1]
    assert completed.WhichOneof("type") == "completed"
    [diag] = completed.completed.diagnostics
    assert diag.severity == tf.pb.Diagnostic.ERROR
    assert diag.summary == "Operation cancelled"
    assert "ops_reboot invoke was cancelled" in diag.detail and "StopProvider" in diag.detail
    steps = [line for line in _log(ops_log) if line.startswith("invoke big")]
    assert 1 <= len(steps) < 600 and "invoked big" not in _log(ops_log)
    # The provider still serves after a stop.
    again = await _events(
        tf.stub.InvokeAction(
            tf.pb.InvokeAction.Request(
                action_type="ops_reboot", config=tf.dv(_reboot(server="x", steps=1), REBOOT)
            )
        )
    )
    assert not again[-1].completed.diagnostics


async def test_client_going_away_stops_the_action(tf: Tf, ops_log: Path) -> None:
    call = tf.stub.InvokeAction(
        tf.pb.InvokeAction.Request(
            action_type="ops_reboot",
            config=tf.dv(_reboot(server="gone", steps=600, delay=0.05), REBOOT),
        )
    )
    first, _ = await _first(call)
    assert first.progress.message == "rebooting gone: step 1/600"
    call._call.cancel()  # the stub's call object: Terraform's context was cancelled
    await asyncio.sleep(0.5)
    seen = len(_log(ops_log))
    await asyncio.sleep(0.5)
    assert len(_log(ops_log)) == seen < 600  # no step ran after the cancellation settled
    assert "invoked gone" not in _log(ops_log)


async def _list(tf: Tf, config: dict[str, Any], *, include: bool = False, limit: int = 0) -> Any:
    return await _events(
        tf.stub.ListResource(
            tf.pb.ListResource.Request(
                type_name="ops_server",
                config=tf.dv(config, LIST_CONFIG),
                include_resource_object=include,
                limit=limit,
            )
        )
    )


async def test_list_resource_identity_only(tf: Tf, ops_log: Path) -> None:
    events = await _list(tf, {"prefix": "web", "count": 4})
    assert [e.display_name for e in events] == [f"server web-{i}" for i in range(4)]
    assert [tf.value(e.identity.identity_data, IDENTITY) for e in events] == [
        {"name": f"web-{i}"} for i in range(4)
    ]
    assert not any(e.HasField("resource_object") or e.diagnostic for e in events)
    assert _log(ops_log) == ["listed web 4"]


async def test_list_resource_full_objects_and_limit(tf: Tf, ops_log: Path) -> None:
    events = await _list(tf, {"prefix": "db", "count": 1000}, include=True, limit=3)
    assert len(events) == 3
    assert [tf.value(e.resource_object, SERVER) for e in events] == [
        {"id": f"server-db-{i}", "name": f"db-{i}", "size": i} for i in range(3)
    ]
    # The limit closed the provider's generator: it produced 3 results, not 1000.
    assert _log(ops_log) == ["listed db 3"]


async def test_list_resource_warnings_and_errors(tf: Tf) -> None:
    [empty] = await _list(tf, {"prefix": "none", "count": 0})
    assert not empty.HasField("identity")
    [warning] = empty.diagnostic
    assert (warning.severity, warning.summary) == (tf.pb.Diagnostic.WARNING, "Empty fleet")
    [failed] = await _list(tf, {"prefix": "-x", "count": 2})
    [error] = failed.diagnostic
    assert (error.severity, error.summary) == (tf.pb.Diagnostic.ERROR, "Invalid prefix")
    assert diag_paths([error]) == [["prefix"]]
    [missing] = await _list(tf, {"prefix": None, "count": 2})
    assert diag_texts(missing.diagnostic) == ["Missing required argument: prefix is required"]
    assert diag_paths(missing.diagnostic) == [["prefix"]]
    unknown = await _events(
        tf.stub.ListResource(
            tf.pb.ListResource.Request(type_name="ops_nope", config=tf.dv({}, cty.Object({})))
        )
    )
    assert any("no list resource 'ops_nope'" in t for t in diag_texts(unknown[0].diagnostic))


async def test_validate_list_resource_config(tf: Tf) -> None:
    ok = await tf.call(
        "ValidateListResourceConfig",
        type_name="ops_server",
        config=tf.dv({"prefix": "a", "count": 2}, LIST_CONFIG),
        limit=tf.dv(10, cty.Number),
        include_resource_object=tf.dv(True, cty.Bool),
    )
    assert not ok.diagnostics, diag_texts(ok.diagnostics)
    bad = await tf.call(
        "ValidateListResourceConfig",
        type_name="ops_server",
        config=tf.dv({"prefix": None, "count": 20000}, LIST_CONFIG),
        limit=tf.dv(-1, cty.Number),
    )
    paths = diag_paths(bad.diagnostics)
    assert sorted(paths) == [["count"], ["limit"]], diag_texts(bad.diagnostics)


def test_provider_rejects_a_list_resource_without_identity_or_resource() -> None:
    class Listed(ListResource):
        type_name = "x_thing"

    class Thing(Resource):
        type_name = "x_thing"

    with pytest.raises(ConfigError, match="identity"):
        Provider("x", resources=[Thing()], list_resources=[Listed()])

    class WithIdentity(Listed):
        identity = IdentitySchema({"id": IdentityAttribute(cty.String, required_for_import=True)})

    with pytest.raises(ConfigError, match="managed resource"):
        Provider("x", list_resources=[WithIdentity()])

    class IdentifiedThing(Thing):  # the managed resource's identity serves the list
        identity_schema = WithIdentity.identity

    provider = Provider("x", resources=[IdentifiedThing()], list_resources=[Listed()])
    assert provider.list_resources["x_thing"].identity is None

    class Act(Action):
        type_name = "y_act"

    with pytest.raises(ConfigError, match="does not start"):
        Provider("x", actions=[Act()])
