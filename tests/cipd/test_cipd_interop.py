"""Interop with LUCI's own Go code, both directions (go.chromium.org/luci from the proxy).

1. ``cipdhost`` (tests/interop/cipd/cmd/cipdhost) runs luci's ``plugin/host`` — the
   code inside the real CIPD client — and launches the plugwire Python plugin.
2. The plugwire host launches Go plugins built on luci's ``plugins/admission.Run``:
   the harness ``admissionplugin`` and luci's own ``plugins/admission/example``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.gobuild import build_go

from plugwire.core.errors import PluginTimeoutError, RemoteError
from plugwire.core.status import StatusCode
from plugwire.grpc.cipd import (
    AdmissionAbortedError,
    AdmissionDeniedError,
    CipdHost,
    MetadataEntry,
    Pin,
    StaticMetadataSource,
)

pytestmark = [pytest.mark.interop, pytest.mark.cipd]

URL = "https://cipd.example.com"
SHA1 = "b" * 40
DIGEST = hashlib.sha256(b"package body").digest()
SHA256_IID = base64.urlsafe_b64encode(DIGEST + b"\x02").rstrip(b"=").decode()
MODES = Path(__file__).parent / "plugins" / "modes.py"


@pytest.fixture(scope="session")
def go_cipdhost() -> Path:
    return build_go("cipd", "./cmd/cipdhost")


@pytest.fixture(scope="session")
def go_plugin() -> Path:
    return build_go("cipd", "./cmd/admissionplugin")


@pytest.fixture(scope="session")
def luci_example() -> Path:
    return build_go(
        "cipd",
        "go.chromium.org/luci/cipd/client/cipd/plugin/plugins/admission/example",
        name="luci-admission-example",
    )


def run_go_host(binary: Path, tmp_path: Path, scenario: dict[str, Any]) -> tuple[list[Any], str]:
    """Run cipdhost on ``scenario``: (result lines, then {"close_seconds"}; its stderr)."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    proc = subprocess.run(
        [str(binary), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "close_seconds" in lines[-1], lines
    return lines, proc.stderr


def check(package: str, iid: str = SHA1) -> dict[str, str]:
    return {"package": package, "instance_id": iid}


# -- 1. luci's Go host, plugwire's Python plugin -----------------------------------


def test_luci_host_drives_python_plugin(go_cipdhost: Path, tmp_path: Path) -> None:
    scenario = {
        "service_url": URL,
        "plugin": [sys.executable, str(MODES), "normal"],
        "metadata": {
            f"meta/yes@{SHA256_IID}": [
                {"key": "allowed", "value": "nope"},
                {"key": "other", "value": DIGEST.hex()},
                {"key": "allowed", "value": "nah"},
                {"key": "allowed", "value": DIGEST.hex()},
            ],
            f"meta/no@{SHA256_IID}": [{"key": "allowed", "value": "nope"}],
        },
        "batches": [
            [
                check("good/a"),
                check("bad/a"),
                check("meta/yes", SHA256_IID),
                check("meta/no", SHA256_IID),
                check("false/a"),
                check("boom/a"),
            ],
            [check("hang/a"), check("crash/mid-batch"), check("hang/b")],
            [check("good/after-crash")],
        ],
    }
    lines, stderr = run_go_host(go_cipdhost, tmp_path, scenario)
    results = lines[:-1]
    by_pkg = {r["package"]: r for r in results}
    assert len(results) == 10
    # luci's dedup hands out the same promise while the plugin runs; once it is gone,
    # every check gets a fresh rejected one (plugwire behaves the same way).
    assert [r["same_promise"] for r in results] == [True] * 9 + [False]
    assert by_pkg["good/a"]["ok"] is True
    assert (by_pkg["bad/a"]["code"], by_pkg["bad/a"]["message"]) == (
        "FailedPrecondition",
        "package bad/a is not allowed",
    )
    assert by_pkg["meta/yes"]["ok"] is True  # visited 2 pages through luci's ListMetadata
    assert by_pkg["meta/no"]["code"] == "FailedPrecondition"
    assert by_pkg["meta/no"]["message"] == 'no matching "allowed" metadata among 1 entries'
    assert by_pkg["false/a"]["code"] == "FailedPrecondition"
    assert by_pkg["boom/a"]["code"] == "Aborted"
    assert "kaboom" in by_pkg["boom/a"]["message"]
    # The crash mid-batch fails the whole batch and every later check with luci's error
    # (luci waits only 50 ms for the exit status after the stream ends; on a loaded
    # machine it falls back to its generic message, as its own comment says).
    messages = {
        "the admission plugin terminated: exit status 3",
        "the admission plugin is terminating",
    }
    for pkg in ("hang/a", "crash/mid-batch", "hang/b", "good/after-crash"):
        assert not by_pkg[pkg]["ok"], pkg
        assert by_pkg[pkg]["message"] in messages, by_pkg[pkg]
    # Host.Log from Python logging reached luci's logger, and the plugin version too.
    assert "rejecting bad/a" in stderr
    assert 'Using deployment admission plugin "plugwire-test (normal)"' in stderr


def test_luci_host_closes_python_plugin_with_a_hanging_handler(
    go_cipdhost: Path, tmp_path: Path
) -> None:
    scenario = {
        "service_url": URL,
        "plugin": [sys.executable, str(MODES), "normal"],
        "batches": [[check("good/a")], [check("hang/forever")]],
        "batch_wait_ms": [30000, 500],
    }
    lines, _ = run_go_host(go_cipdhost, tmp_path, scenario)
    assert lines[0]["ok"] is True
    assert lines[1]["ok"] is False and "deadline" in lines[1]["message"]
    # luci's Close() closes stdin; the plugin cancels its hanging handler and exits
    # well before luci's 5 s SIGKILL.
    assert lines[2]["close_seconds"] < 4


# -- 2. plugwire's host, luci's Go plugins -----------------------------------------


@pytest.fixture
async def host() -> AsyncIterator[CipdHost]:
    source = StaticMetadataSource(
        {
            Pin("meta/yes", SHA256_IID): [
                MetadataEntry("allowed", "nope"),
                MetadataEntry("allowed", "nah"),
                MetadataEntry("allowed", DIGEST.hex()),
            ],
            Pin("meta/no", SHA256_IID): [MetadataEntry("allowed", "nope")],
            Pin("pkg/allowed", SHA256_IID): [
                MetadataEntry("allowed-sha256", "0" * 64),
                MetadataEntry("allowed-sha256", DIGEST.hex()),
            ],
            Pin("pkg/mismatch", SHA256_IID): [
                MetadataEntry("allowed-sha256", "0" * 64),
                MetadataEntry("allowed-sha256", "1" * 64),
            ],
        }
    )
    async with CipdHost(service_url=URL, metadata=source) as h:
        yield h


async def outcome(promise: Any) -> str:
    try:
        await promise.wait()
    except AdmissionDeniedError as exc:
        return f"denied: {exc.message}"
    except RemoteError as exc:
        return f"{StatusCode(exc.code).name}: {exc.message}"
    return "admitted"


@pytest.mark.anyio
async def test_plugwire_host_drives_luci_go_plugin(
    host: CipdHost, go_plugin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = await host.launch([go_plugin, "normal"], name="go-admission")
    with caplog.at_level(logging.DEBUG, logger="plugwire.plugin.go-admission"):
        pins = [
            Pin("good/a", SHA1),
            Pin("bad/a", SHA1),
            Pin("meta/yes", SHA256_IID),
            Pin("meta/no", SHA256_IID),
        ]
        promises = plugin.prefetch(pins)
        assert [plugin.check_admission(p) for p in pins] == promises
        assert [await outcome(p) for p in promises] == [
            "admitted",
            "denied: package bad/a is not allowed",
            "admitted",
            'denied: no matching "allowed" metadata among 1 entries',
        ]
        assert plugin.plugin_version == "plugwire-interop-go 1.0 (normal)"
        with anyio.fail_after(5):
            while not any("rejecting bad/a" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await anyio.sleep(0.01)
    log_record = next(r for r in caplog.records if "rejecting bad/a" in r.getMessage())
    assert log_record.levelno == logging.WARNING  # luci's "warning" severity via Host.Log

    # A hanging handler only delays its own check.
    with pytest.raises(PluginTimeoutError):
        await plugin.check(Pin("hang/a", SHA1), timeout=0.3)
    await plugin.check(Pin("good/b", SHA1), timeout=10)

    # A crash mid-batch rejects the batch and every later check, carrying the exit.
    batch = plugin.prefetch([Pin("hang/b", SHA1), Pin("crash/now", SHA1)])
    for promise in batch:
        with anyio.fail_after(10), pytest.raises(AdmissionAbortedError) as info:
            await promise.wait()
        assert info.value.process_error is not None
        assert info.value.process_error.returncode == 3
    with pytest.raises(AdmissionAbortedError):
        await plugin.check(Pin("good/c", SHA1))
    # Decisions made before the crash stay cached.
    await plugin.check_admission(Pin("good/a", SHA1)).wait()


@pytest.mark.anyio
async def test_plugwire_host_closes_luci_go_plugin_with_a_hanging_handler(
    host: CipdHost, go_plugin: Path
) -> None:
    plugin = await host.launch([go_plugin, "normal"])
    hang = plugin.check_admission(Pin("hang/a", SHA1))
    await plugin.check(Pin("good/a", SHA1), timeout=10)
    process = plugin.process
    assert process is not None
    start = time.monotonic()
    await plugin.aclose()
    assert time.monotonic() - start < 4  # stdin EOF, not the 5 s SIGKILL
    assert process.returncode == 0
    with pytest.raises(AdmissionAbortedError):
        await hang.wait()


@pytest.mark.anyio
async def test_plugwire_host_drives_luci_example_plugin(host: CipdHost, luci_example: Path) -> None:
    plugin = await host.launch([luci_example])
    pins = [
        Pin("experimental/foo", SHA256_IID),
        Pin("pkg/allowed", SHA256_IID),
        Pin("pkg/mismatch", SHA256_IID),
        Pin("pkg/none", SHA256_IID),
    ]
    assert [await outcome(p) for p in plugin.prefetch(pins)] == [
        "denied: experimental packages are not allowed",
        "admitted",
        'denied: evaluated 2 metadata entries with key "allowed-sha256" and none is valid',
        'denied: doesn\'t have metadata entries with key "allowed-sha256"',
    ]
    assert plugin.plugin_version is not None and plugin.plugin_version.startswith("example 1.0")


@pytest.mark.anyio
async def test_luci_example_denies_without_metadata(luci_example: Path) -> None:
    # luci's example pages through Host.ListMetadata; an empty source answers with no
    # entries, which the example reads as "not admitted".
    async with CipdHost(service_url=URL, metadata=StaticMetadataSource()) as h:
        plugin = await h.launch([luci_example])
        assert await plugin.is_admitted(Pin("pkg/x", SHA1)) is False
