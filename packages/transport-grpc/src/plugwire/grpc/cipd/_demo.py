"""The ``cipd`` family of ``plugwire demo``: a CIPD host checks pins through the example."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

from plugwire.core.demo import DemoRow

from .errors import AdmissionAbortedError, AdmissionDeniedError
from .host import CipdHost
from .metadata import MetadataEntry, StaticMetadataSource
from .pins import HashAlgo, ObjectRef, Pin

FAMILY = "cipd"


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def demo() -> Sequence[DemoRow]:
    digest = "5" * 64
    iid = ObjectRef(HashAlgo.SHA256, digest).instance_id
    allowed, unlisted, experimental = (
        Pin("infra/tools/allowed", iid),
        Pin("infra/tools/unlisted", iid),
        Pin("experimental/tool", iid),
    )
    source = StaticMetadataSource(
        {
            allowed: [
                MetadataEntry("allowed-sha256", "0" * 64),
                MetadataEntry("allowed-sha256", digest),
            ]
        }
    )
    rows: list[DemoRow] = []
    argv = [sys.executable, "-m", "plugwire.grpc.cipd.example"]
    records: list[logging.LogRecord] = []
    capture = _ListHandler(records)
    plugin_log = logging.getLogger("plugwire.plugin.cipd-example")
    saved = plugin_log.propagate, plugin_log.level
    plugin_log.addHandler(capture)
    plugin_log.propagate = False
    plugin_log.setLevel(logging.INFO)
    try:
        return await _run(argv, source, allowed, unlisted, experimental, iid, rows, records)
    finally:
        plugin_log.removeHandler(capture)
        plugin_log.propagate, plugin_log.level = saved[0], saved[1]


async def _run(
    argv: list[str],
    source: StaticMetadataSource,
    allowed: Pin,
    unlisted: Pin,
    experimental: Pin,
    iid: str,
    rows: list[DemoRow],
    records: list[logging.LogRecord],
) -> Sequence[DemoRow]:
    async with CipdHost(service_url="https://cipd.example.com", metadata=source) as host:
        # One relaunch covers a start-up death (e.g. grpc/grpc#43055 in a busy host).
        plugin = await host.launch(argv, name="cipd-example", connect_timeout=15, max_restarts=1)
        start = time.monotonic()
        promises = plugin.prefetch([allowed, unlisted, experimental])
        outcomes = []
        for promise in promises:
            try:
                await promise.wait()
                outcomes.append("admitted")
            except AdmissionDeniedError as exc:
                outcomes.append(f"denied ({exc.message})")
        rows.append(
            DemoRow(
                FAMILY,
                "admission via metadata",
                outcomes[0] == "admitted" and outcomes[1].startswith("denied"),
                f"{allowed.package}: {outcomes[0]}; {unlisted.package}: {outcomes[1]}",
                time.monotonic() - start,
            )
        )
        rows.append(
            DemoRow(
                FAMILY,
                "not admitted (FailedPrecondition)",
                outcomes[2].startswith("denied"),
                f"{experimental.package}: {outcomes[2]}",
            )
        )
        logged = [r.getMessage() for r in records if r.levelno >= logging.INFO]
        rows.append(
            DemoRow(
                FAMILY,
                "Host.Log -> logging",
                any("refusing experimental" in m for m in logged),
                f"plugin logged {logged[0] if logged else None!r}",
            )
        )
        again = plugin.check_admission(allowed)
        rows.append(
            DemoRow(
                FAMILY,
                "one promise per pin",
                again is promises[0] and again.done,
                f"plugin {plugin.plugin_version!r}, salt {plugin.salt}",
            )
        )
        process = plugin.process
        start = time.monotonic()
        await plugin.aclose()
        try:
            await plugin.check(Pin("infra/tools/late", iid))
            late = "admitted?!"
        except AdmissionAbortedError as exc:
            late = exc.message
        rows.append(
            DemoRow(
                FAMILY,
                "close: stdin EOF, then aborted",
                process is not None and process.returncode == 0,
                f"exit status {process.returncode if process else None}; later check: {late}",
                time.monotonic() - start,
            )
        )
    return rows
