"""The plugin, launched for real by plugwire's CIPD host (what the CIPD client does)."""

from __future__ import annotations

import hashlib
import logging

import pytest
from plugwire.grpc.cipd import (
    AdmissionDeniedError,
    CipdHost,
    HashAlgo,
    MetadataEntry,
    ObjectRef,
    Pin,
    StaticMetadataSource,
)

from {{ cookiecutter.package_name }}.plugin import ALLOWED_PREFIX, METADATA_KEY, PLUGIN_VERSION

pytestmark = pytest.mark.anyio

SERVICE_URL = "https://chrome-infra-packages.appspot.com"


def pin(package: str, content: bytes) -> Pin:
    digest = hashlib.sha256(content).hexdigest()
    return Pin(package, ObjectRef(HashAlgo.SHA256, digest).instance_id)


async def test_admission_decisions(
    plugin_command: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    approved = pin(f"{ALLOWED_PREFIX}tools/deployer", b"v1")
    unapproved = pin(f"{ALLOWED_PREFIX}tools/unvetted", b"v2")
    outside = pin("other/tool", b"v3")
    metadata = StaticMetadataSource(
        {
            approved: [MetadataEntry("reviewed", "yes"), MetadataEntry(METADATA_KEY, "alice")],
            outside: [MetadataEntry(METADATA_KEY, "bob")],
        }
    )
    caplog.set_level(logging.INFO, logger="plugwire.plugin.{{ cookiecutter.plugin_name }}")
    async with CipdHost(service_url=SERVICE_URL, metadata=metadata) as host:
        plugin = await host.launch(plugin_command, name="{{ cookiecutter.plugin_name }}")
        await plugin.check(approved, timeout=30)  # returns: admitted
        assert plugin.plugin_version == PLUGIN_VERSION
        assert any("alice" in r.getMessage() for r in caplog.records)  # the plugin's log

        with pytest.raises(AdmissionDeniedError, match=f"no {METADATA_KEY} metadata"):
            await plugin.check(unapproved, timeout=30)
        with pytest.raises(AdmissionDeniedError, match=f"only packages under {ALLOWED_PREFIX}"):
            await plugin.check(outside, timeout=30)
        # Checks are deduplicated: the same pin gives the same settled answer.
        assert await plugin.is_admitted(approved)
        assert not await plugin.is_admitted(outside)


async def test_many_pins_at_once(plugin_command: list[str]) -> None:
    pins = [pin(f"{ALLOWED_PREFIX}pkg/n{i}", str(i).encode()) for i in range(20)]
    metadata = StaticMetadataSource({p: [MetadataEntry(METADATA_KEY, "ci")] for p in pins[::2]})
    async with CipdHost(service_url=SERVICE_URL, metadata=metadata) as host:
        plugin = await host.launch(plugin_command)
        decisions = []
        for promise in plugin.prefetch(pins):
            try:
                await promise.wait()
                decisions.append(True)
            except AdmissionDeniedError:
                decisions.append(False)
    assert decisions == [i % 2 == 0 for i in range(20)]
