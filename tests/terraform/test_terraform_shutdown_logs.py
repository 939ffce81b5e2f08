"""Stopping a provider logs no error: ``GRPCStdio/StreamStdio`` ends with OK on shutdown.

The host keeps ``StreamStdio`` open for the provider's whole life. It used to be
cancelled by the server's stop, and grpcio then logged ``Exception not handled ...
[/plugin.GRPCStdio/StreamStdio] ... CancelledError`` at ERROR on every provider exit,
which Terraform shows in its log. These tests capture the logs at shutdown, from a
plugwire host (the plugin's hclog lines are forwarded to ``plugwire.plugin.*``) and
from the real terraform CLI (``TF_LOG``).
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from provider_support import EXAMPLE, anyio_backend, launch
from terraform_support import WorkspaceFactory, required_providers

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform]


def _problems(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.WARNING or "CancelledError" in r.getMessage()
    ]


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
