"""Stopping a provider logs no error: ``GRPCStdio/StreamStdio`` ends with OK on shutdown.

The host keeps ``StreamStdio`` open for the provider's whole life. It used to be
cancelled by the server's stop, and grpcio then logged ``Exception not handled ...
[/plugin.GRPCStdio/StreamStdio] ... CancelledError`` at ERROR on every provider exit,
which Terraform shows in its log. These tests capture the logs at shutdown, from a
plugwire host (the plugin's hclog lines are forwarded to ``plugwire.plugin.*``) and
from the real terraform CLI (``TF_LOG``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import grpc
import pytest
from google.protobuf import empty_pb2
from provider_support import EXAMPLE, anyio_backend, launch
from terraform_support import WorkspaceFactory, required_providers

from plugwire.grpc._generated.plugin import (
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2_grpc,
)
from plugwire.grpc.goplugin.announce import parse_announce
from plugwire.grpc.terraform import serve_async
from plugwire.grpc.terraform.examples.thing import provider
from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform]


def _problems(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.WARNING or "CancelledError" in r.getMessage()
    ]


async def _stdio_stream_at_shutdown() -> tuple[list[bytes], str]:
    """Serve the example provider in this process, hold ``StreamStdio`` open as a host
    does, call ``GRPCController.Shutdown``: what the stream carried, how it ended."""
    env = {MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": "6"}
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve_async(provider(), environ=env, stdout=out, stop=stop))
    while "\n" not in out.getvalue() and not task.done():  # noqa: ASYNC110 (StringIO)
        await asyncio.sleep(0.01)
    ann = parse_announce(out.getvalue().strip(), versions=(6,))
    received: list[bytes] = []
    async with grpc.aio.insecure_channel(f"unix:{ann.address}") as channel:
        stream = grpc_stdio_pb2_grpc.GRPCStdioStub(channel).StreamStdio(empty_pb2.Empty())
        print("provider says hello")  # captured: the stream carries it to the host
        async for data in stream:
            received.append(data.data)
            if b"hello" in b"".join(received):
                break
        await grpc_controller_pb2_grpc.GRPCControllerStub(channel).Shutdown(
            grpc_controller_pb2.Empty(), timeout=5
        )
        try:
            async for data in stream:
                received.append(data.data)
            ended = "OK"
        except grpc.aio.AioRpcError as exc:
            ended = exc.code().name
        assert await asyncio.wait_for(task, 10) == 0
    return received, ended


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stdio_stream_ends_ok_and_nothing_is_logged_at_shutdown(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    received, ended = await _stdio_stream_at_shutdown()
    assert b"provider says hello" in b"".join(received)
    problems = _problems(caplog.records)
    assert problems == [], f"logged while the provider stopped: {problems}"
    assert ended == "OK", f"StreamStdio ended {ended} at shutdown (cancelled by the server stop)"


@pytest.mark.anyio
@pytest.mark.parametrize("version", [5, 6])
async def test_plugwire_host_sees_no_error_when_the_provider_stops(
    version: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with launch(version) as tf:
        resp = await tf.call("GetProviderSchema")
        assert "example_thing" in resp.resource_schemas
        started = time.monotonic()
    stopped = time.monotonic() - started
    problems = _problems(caplog.records)
    assert problems == [], f"logged at shutdown of a tfplugin{version} provider: {problems}"
    # The plugin's own debug lines made it through, so its shutdown was observed.
    assert any(r.name.startswith("plugwire.plugin") for r in caplog.records), [
        r.name for r in caplog.records
    ]
    # go-plugin's host gives a plugin 2 s to exit after Shutdown before killing it.
    assert stopped < 2.0, f"the provider took {stopped:.2f} s to exit after Shutdown"


@pytest.mark.interop
def test_terraform_log_has_no_provider_error_at_exit(
    terraform_workspace: WorkspaceFactory,
) -> None:
    ws = terraform_workspace(EXAMPLE)
    ws.write(required_providers() + 'resource "example_thing" "a" {\n  name = "a"\n}\n')
    result = ws.run("plan", "-input=false", "-no-color", env={"TF_LOG": "JSON"})
    assert "example_thing.a will be created" in result.stdout
    errors = []
    for line in result.stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        text = json.dumps(entry)
        if entry.get("@level") == "error" or "CancelledError" in text:
            errors.append(text)
    assert errors == [], f"terraform logged errors (provider shutdown?): {errors[:5]}"
    # Terraform stopped the provider cleanly: it says so for each launch.
    assert "plugin exited" in result.stderr or "plugin process exited" in result.stderr
