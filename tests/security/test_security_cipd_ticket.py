"""CIPD: the host checks the plugin's ticket on every call of every method. A call
without a ticket, with a made-up one, or with the ticket of a plugin that has
exited is refused; the live plugin's ticket (the positive control) gets through."""

from __future__ import annotations

import sys

import grpc
import grpc.aio
import pytest

from plugwire.core import Host
from plugwire.grpc.cipd import CipdHost, Pin
from plugwire.grpc.cipd import _wire as wire
from plugwire.grpc.cipd.metadata import MetadataEntry, StaticMetadataSource
from plugwire.grpc.cipd.pins import HashAlgo, ObjectRef

pytestmark = [pytest.mark.anyio, pytest.mark.cipd]

UNARY = [wire.LOG, wire.LIST_METADATA, wire.RESOLVE_ADMISSION]
STREAM = [wire.LIST_ADMISSIONS]
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _call(
    channel: grpc.aio.Channel, method: str, ticket: str | None
) -> tuple[grpc.StatusCode, str]:
    md = None if ticket is None else (("x-plugin-ticket", ticket),)
    try:
        if method in STREAM:
            call = channel.unary_stream(method)(b"", metadata=md, timeout=5)
            async for _ in call:
                break
            return grpc.StatusCode.OK, ""
        await channel.unary_unary(method)(b"", metadata=md, timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_every_method_checks_the_ticket_on_every_call() -> None:
    digest = "5" * 64
    pin = Pin("infra/tools/allowed", ObjectRef(HashAlgo.SHA256, digest).instance_id)
    metadata = StaticMetadataSource({pin: [MetadataEntry("allowed-sha256", digest)]})
    async with (
        Host("security") as host,
        CipdHost(service_url="https://cipd.example.com", metadata=metadata, host=host) as cipd,
    ):
        plugin = await cipd.launch(
            [sys.executable, "-m", "plugwire.grpc.cipd.example"], name="p", connect_timeout=30
        )
        await plugin.check(pin, timeout=30)
        [live] = list(cipd._sessions)
        results: dict[tuple[str, str], tuple[grpc.StatusCode, str]] = {}
        async with grpc.aio.insecure_channel(f"127.0.0.1:{cipd.port}") as channel:
            for method in UNARY + STREAM:
                for _ in range(3):  # every call, not just the first
                    results[(method, "none")] = await _call(channel, method, None)
                    results[(method, "made-up")] = await _call(channel, method, "x" * 32)
            control = await _call(
                channel,
                wire.LIST_METADATA,
                live,
            )
            await host.close(plugin)
            assert not cipd._sessions
            for method in UNARY + STREAM:
                results[(method, "stale")] = await _call(channel, method, live)
    for (method, kind), (code, details) in results.items():
        if kind == "none":
            assert (code, details) == (UNAUTH, "no ticket in the request"), (method, code)
        else:
            assert (code, details) == (DENIED, "invalid ticket in the request"), (method, kind)
    # the live ticket passes the ticket check (the empty request itself may be refused)
    assert "ticket" not in control[1], control
