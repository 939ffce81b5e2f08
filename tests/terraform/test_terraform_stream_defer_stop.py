"""Deferral in PlanAction and StopProvider between two ListResource results, over
tfplugin5 and tfplugin6, through a real go-plugin launch (Terraform's handshake,
AutoMTLS) of the ``ops`` example and of ``stream_stop_provider.py``:

* an action's plan defers (``ctx.defer()`` in ``Action.plan``, the ``ops`` example
  while its ``endpoint`` is unknown) only when the client allows deferral, else an
  error diagnostic; a provider-wide deferral (``configure`` deferred) defers every
  action's plan too;
* StopProvider arriving while a ``list`` generator waits between two results ends the
  stream with an "Operation cancelled" diagnostic, runs the generator's ``finally``,
  and the provider keeps serving; so does a stop arriving while no step of the
  generator runs (the last result on its way out: checked in-process, where that
  moment can be held).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from provider_support import Tf, anyio_backend, diag_texts, launch, modules

from plugwire.grpc.terraform import cty
from plugwire.grpc.terraform._core import ProviderCore
from plugwire.grpc.terraform._stream_core import StreamCore

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

OPS = [sys.executable, "-m", "plugwire.grpc.terraform.examples.ops"]
SLOW = [sys.executable, str(Path(__file__).with_name("stream_stop_provider.py"))]
ENDPOINT = cty.Object({"endpoint": cty.String})
REBOOT = cty.Object(
    {"server": cty.String, "steps": cty.Number, "delay": cty.Number, "fail": cty.Bool}
)
PING = cty.Object({"target": cty.String})
LIST = cty.Object({"count": cty.Number, "pause": cty.Number})
IDENTITY = cty.Object({"name": cty.String})


@pytest.fixture(params=[5, 6], ids=["tfplugin5", "tfplugin6"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def slow_log(tmp_path: Path) -> Path:
    return tmp_path / "slow.log"


@pytest.fixture
async def ops(version: int) -> AsyncIterator[Tf]:
    async with launch(version, OPS) as tf:
        yield tf


@pytest.fixture
async def slow(version: int, slow_log: Path) -> AsyncIterator[Tf]:
    async with launch(version, SLOW, env={"SLOW_LOG": str(slow_log)}) as tf:
        yield tf


def _log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _configure(tf: Tf, endpoint: Any, *, allowed: bool) -> None:
    resp = await tf.call(
        "ConfigureProvider",
        terraform_version="1.16.4",
        config=tf.dv({"endpoint": endpoint}, ENDPOINT),
        client_capabilities=tf.pb.ClientCapabilities(deferral_allowed=allowed),
    )
    assert not resp.diagnostics, diag_texts(resp.diagnostics)


async def _plan_reboot(tf: Tf, *, allowed: bool) -> Any:
    config = {"server": "web", "steps": 1, "delay": None, "fail": None}
    return await tf.call(
        "PlanAction",
        action_type="ops_reboot",
        config=tf.dv(config, REBOOT),
        client_capabilities=tf.pb.ClientCapabilities(deferral_allowed=allowed),
    )


async def test_action_plan_defers_when_deferral_is_allowed(ops: Tf) -> None:
    await _configure(ops, cty.UNKNOWN, allowed=True)
    plan = await _plan_reboot(ops, allowed=True)
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    assert plan.HasField("deferred")
    assert plan.deferred.reason == ops.pb.Deferred.PROVIDER_CONFIG_UNKNOWN


async def test_action_plan_deferral_not_allowed_is_an_error(ops: Tf) -> None:
    await _configure(ops, cty.UNKNOWN, allowed=False)
    plan = await _plan_reboot(ops, allowed=False)
    assert not plan.HasField("deferred")
    [diag] = plan.diagnostics
    assert (diag.severity, diag.summary) == (ops.pb.Diagnostic.ERROR, "Deferral not allowed")
    assert "ops_reboot deferred (PROVIDER_CONFIG_UNKNOWN)" in diag.detail, diag.detail
    assert "deferral_allowed is false" in diag.detail, diag.detail


async def test_action_plan_does_not_defer_once_the_endpoint_is_known(ops: Tf) -> None:
    await _configure(ops, "https://ops.example", allowed=True)
    plan = await _plan_reboot(ops, allowed=True)
    assert not plan.HasField("deferred") and not plan.diagnostics, diag_texts(plan.diagnostics)


async def test_provider_wide_deferral_defers_every_action_plan(slow: Tf) -> None:
    await _configure(slow, cty.UNKNOWN, allowed=True)
    plan = await slow.call(
        "PlanAction",
        action_type="slow_ping",
        config=slow.dv({"target": "a"}, PING),
        client_capabilities=slow.pb.ClientCapabilities(deferral_allowed=True),
    )
    assert not plan.diagnostics, diag_texts(plan.diagnostics)
    assert plan.deferred.reason == slow.pb.Deferred.PROVIDER_CONFIG_UNKNOWN


async def test_action_plan_without_deferral_has_no_deferred(slow: Tf) -> None:
    await _configure(slow, "known", allowed=True)
    plan = await slow.call(
        "PlanAction", action_type="slow_ping", config=slow.dv({"target": "a"}, PING)
    )
    assert not plan.HasField("deferred") and not plan.diagnostics


def _list(tf: Tf, count: int, pause: float) -> Any:
    return tf.stub.ListResource(
        tf.pb.ListResource.Request(
            type_name="slow_item", config=tf.dv({"count": count, "pause": pause}, LIST)
        )
    )


async def test_stop_provider_between_two_list_results(slow: Tf, slow_log: Path) -> None:
    events = aiter(_list(slow, 5, 60))
    first = await anext(events)
    assert first.display_name == "item-0" and not first.diagnostic
    assert slow.value(first.identity.identity_data, IDENTITY) == {"name": "item-0"}
    await asyncio.sleep(0.3)  # the generator now sleeps before item-1
    assert _log(slow_log) == ["yield item-0"]
    started = time.monotonic()
    await slow.call("StopProvider")
    rest = await asyncio.wait_for(_collect(events), 10)
    assert time.monotonic() - started < 5
    # The stream ends with the cancellation diagnostic, no further result.
    [last] = rest
    assert not last.HasField("identity") and not last.display_name
    [diag] = last.diagnostic
    assert (diag.severity, diag.summary) == (slow.pb.Diagnostic.ERROR, "Operation cancelled")
    assert "slow_item list was cancelled" in diag.detail and "StopProvider" in diag.detail
    # The generator saw the cancellation and its finally ran.
    assert _log(slow_log) == ["yield item-0", "cancelled", "finally 1"]
    # The provider keeps serving: a new listing, and another call.
    again = await asyncio.wait_for(_collect(aiter(_list(slow, 3, 0))), 10)
    assert [e.display_name for e in again] == ["item-0", "item-1", "item-2"]
    assert not any(e.diagnostic for e in again)
    assert _log(slow_log)[-1] == "finally 3"
    schema = await slow.call("GetProviderSchema")
    assert not schema.diagnostics and "slow_item" in schema.list_resource_schemas


async def _collect(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


async def test_stop_provider_while_a_result_is_on_its_way_out(
    version: int, slow_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stream_stop_provider import provider

    monkeypatch.setenv("SLOW_LOG", str(slow_log))
    pb = modules(version)[0]
    core = ProviderCore(provider(), pb, version)
    stream = StreamCore(core)
    request = pb.ListResource.Request(
        type_name="slow_item",
        config=pb.DynamicValue(msgpack=cty.encode_msgpack({"count": 5, "pause": 0}, LIST)),
    )
    events = stream.list_resource(request, pb.ListResource.Event)
    first = await anext(events)  # the stream is held at its yield: no step in flight
    assert first.display_name == "item-0"
    assert core.stop() == 1  # the listing's marker
    rest = [event async for event in events]
    [last] = rest
    assert not last.display_name
    [diag] = last.diagnostic
    assert (diag.severity, diag.summary) == (pb.Diagnostic.ERROR, "Operation cancelled")
    assert "slow_item list was cancelled" in diag.detail
    assert _log(slow_log) == ["yield item-0", "finally 1"]  # closed, item-1 never made
    # The next listing is not affected by the earlier stop.
    again = [e async for e in stream.list_resource(request, pb.ListResource.Event)]
    assert [e.display_name for e in again] == [f"item-{i}" for i in range(5)]
    assert not core._inflight
