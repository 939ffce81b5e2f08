"""Bad input gets diagnostics naming the attribute path, never a crash; StopProvider
cancels a slow apply; RPCs the provider does not define answer UNIMPLEMENTED quietly."""

from __future__ import annotations

import json
import logging
import time

import anyio
import grpc
import pytest
from provider_support import THING, anyio_backend, diag_paths, diag_texts, launch, modules

from plugwire.core.errors import RemoteError
from plugwire.grpc.terraform import Provider, cty
from plugwire.grpc.terraform.examples.thing import provider as example_provider

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

VERSIONS = pytest.mark.parametrize("version", [5, 6], ids=["tfplugin5", "tfplugin6"])


def _thing(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict.fromkeys(THING.attributes)
    base.update(kw)
    return base


@VERSIONS
async def test_bad_input_diagnostics(version: int) -> None:
    async with launch(version) as tf:
        # A configuration failing a validator: the diagnostic points at "name".
        bad = await tf.call(
            "ValidateResourceConfig",
            type_name="example_thing",
            config=tf.dv(_thing(name=""), THING),
        )
        assert diag_paths(bad.diagnostics) == [["name"]]
        assert "length" in diag_texts(bad.diagnostics)[0]
        ok = await tf.call(
            "ValidateResourceConfig",
            type_name="example_thing",
            config=tf.dv(_thing(name="a"), THING),
        )
        assert not ok.diagnostics

        # A malformed msgpack value (a number where "name", a string, is): path named.
        wrong = cty.Object({**THING.attributes, "name": cty.Number})
        mal = await tf.call(
            "PlanResourceChange",
            type_name="example_thing",
            prior_state=tf.dv(None, THING),
            proposed_new_state=tf.dv(_thing(name=5), wrong),
            config=tf.dv(_thing(name=5), wrong),
        )
        assert mal.diagnostics and mal.diagnostics[0].severity == 1
        assert ["name"] in diag_paths(mal.diagnostics)
        # Truncated bytes: an error diagnostic, not a crash.
        cut = await tf.call(
            "ReadResource",
            type_name="example_thing",
            current_state=tf.pb.DynamicValue(msgpack=b"\x86\xa2id"),
        )
        assert cut.diagnostics and cut.diagnostics[0].severity == 1

        # A state from a newer schema version than the provider knows.
        newer = await tf.call(
            "UpgradeResourceState",
            type_name="example_thing",
            version=7,
            raw_state=tf.pb.RawState(json=b'{"id": "x"}'),
        )
        [d] = newer.diagnostics
        assert "version 7" in d.detail and "version" in d.summary.lower()
        # Not JSON, and an upgrade that fails inside the provider code.
        notjson = await tf.call(
            "UpgradeResourceState",
            type_name="example_thing",
            version=1,
            raw_state=tf.pb.RawState(json=b"{nope"),
        )
        assert "not JSON" in diag_texts(notjson.diagnostics)[0]
        badsize = await tf.call(
            "UpgradeResourceState",
            type_name="example_thing",
            version=0,
            raw_state=tf.pb.RawState(json=json.dumps({"name": "a", "size": "big"}).encode()),
        )
        assert "size 'big' is not a number" in diag_texts(badsize.diagnostics)[0]

        # Unknown type names.
        unknown = await tf.call(
            "ReadResource", type_name="example_nope", current_state=tf.dv(None, THING)
        )
        assert "example_nope" in diag_texts(unknown.diagnostics)[0]

        # The provider still answers afterwards.
        assert (await tf.call("GetProviderSchema")).resource_schemas


@VERSIONS
async def test_stop_provider_cancels_slow_apply(version: int) -> None:
    async with launch(version, env={"EXAMPLE_APPLY_DELAY": "30"}) as tf:
        config = _thing(name="slow")
        plan = await tf.call(
            "PlanResourceChange",
            type_name="example_thing",
            prior_state=tf.dv(None, THING),
            proposed_new_state=tf.dv(config, THING),
            config=tf.dv(config, THING),
        )
        result: dict[str, object] = {}

        async def apply() -> None:
            result["resp"] = await tf.call(
                "ApplyResourceChange",
                type_name="example_thing",
                prior_state=tf.dv(None, THING),
                planned_state=plan.planned_state,
                config=tf.dv(config, THING),
            )

        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(apply)
            await anyio.sleep(0.5)
            stop = await tf.call("StopProvider")
            assert not stop.Error
        elapsed = time.monotonic() - start
        assert elapsed < 10, "StopProvider did not cancel the 30 s apply"
        resp = result["resp"]
        assert [d.summary for d in resp.diagnostics] == ["Operation cancelled"]  # type: ignore[attr-defined]
        assert tf.value(resp.new_state, THING) is None  # type: ignore[attr-defined]
        # Later calls run normally.
        assert (await tf.call("GetProviderSchema")).resource_schemas


@VERSIONS
async def test_unimplemented_answered_quietly_by_the_process(
    version: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugwire.plugin")
    async with launch(version) as tf:
        # Implemented RPCs answer an unknown type with a diagnostic, unary and streaming.
        upgraded = await tf.stub.UpgradeResourceIdentity(tf.pb.UpgradeResourceIdentity.Request())
        assert [d.summary for d in upgraded.diagnostics] == ["Unknown resource type"]
        answer = await tf.stub.ValidateActionConfig(
            tf.pb.ValidateActionConfig.Request(action_type="x")
        )
        assert [d.summary for d in answer.diagnostics] == ["Unknown action type"]
        events = [e async for e in tf.stub.ListResource(tf.pb.ListResource.Request(type_name="x"))]
        assert [[d.summary for d in e.diagnostic] for e in events] == [
            ["Unknown list resource type"]
        ]
        if version == 6:  # a provider without state stores: UNIMPLEMENTED, quietly
            with pytest.raises(RemoteError) as info:
                await tf.stub.ValidateStateStoreConfig(
                    tf.pb.ValidateStateStoreConfig.Request(type_name="x")
                )
            assert info.value.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
        await tf.call("GetProviderSchema")  # the log lines of the calls above are in
    logged = "\n".join(r.getMessage() for r in caplog.records)
    # The provider's log reached us (so a traceback would have too).
    assert any(r.name.startswith("plugwire.plugin") for r in caplog.records)
    assert "Traceback" not in logged and "NotImplementedError" not in logged
    assert "Unexpected" not in logged


def test_every_tfplugin5_rpc_is_served() -> None:
    """Protocol 5.11 has no RPC the framework leaves to the UNIMPLEMENTED fallback."""
    from plugwire.grpc.terraform import _server5
    from plugwire.grpc.terraform._generated import tfplugin5_pb2

    rpcs = [m.name for m in tfplugin5_pb2.DESCRIPTOR.services_by_name["Provider"].methods]
    assert len(rpcs) > 20
    served = {k for k in vars(_server5.ProviderServicer) if k[:1].isupper()}
    assert [r for r in rpcs if r not in served] == []


async def test_unimplemented_logs_nothing_in_process(caplog: pytest.LogCaptureFixture) -> None:
    """grpcio logs an ERROR for a servicer that raises (the generated base class does);
    the framework's servicer logs nothing for the same call (a protocol-6 state-store
    RPC of a provider without state stores)."""
    pb, pb_grpc = modules(6)
    from plugwire.grpc.terraform import _server6 as srv

    async def call_unimplemented(register: object) -> grpc.StatusCode:
        server = grpc.aio.server()
        register(server)  # type: ignore[operator]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.ProviderStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.ValidateStateStoreConfig(pb.ValidateStateStoreConfig.Request())
                return info.value.code()  # type: ignore[no-any-return]
        finally:
            await server.stop(None)

    caplog.set_level(logging.DEBUG)
    # Control: the generated base servicer raises NotImplementedError -> grpcio logs it.
    code = await call_unimplemented(
        lambda s: pb_grpc.add_ProviderServicer_to_server(pb_grpc.ProviderServicer(), s)
    )
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert any(r.levelno >= logging.ERROR for r in caplog.records), "control logged nothing"
    caplog.clear()
    provider: Provider = example_provider()
    code = await call_unimplemented(lambda s: srv.register(provider, s))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
