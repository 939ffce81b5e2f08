"""``plugwire check goplugin`` against the bundled Python KV plugin, go-plugin's own
upstream example plugin (built from the Go module cache) and broken plugins.

The checker runs as a user runs it (``python -m plugwire check goplugin --json -- ...``):
its exit status and its JSON report are what is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from goplugin_support import KV_PLUGIN, GoBinaries, plugin_script


def run_check(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "check", "goplugin", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout.strip(), f"no report: rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    return proc.returncode, json.loads(proc.stdout)


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["checks"]}


def test_bundled_python_kv_plugin_passes() -> None:
    rc, report = run_check("--env", "KV_DIR=/tmp", "--", *KV_PLUGIN)
    assert rc == 0, report
    checks = rows(report)
    assert report["ok"] and report["counts"] == {"pass": 9, "fail": 0, "skip": 0}
    assert checks["AutoMTLS certificate"]["detail"].startswith("CN=localhost,O=HashiCorp")
    assert "srwx" in checks["socket"]["detail"] and "drwx------" in checks["socket"]["detail"]
    assert report["facts"]["discovery"] == "probed (no gRPC reflection)"
    assert "plugin.GRPCBroker" in report["services"]
    assert "exited 0" in checks["shutdown"]["detail"]
    assert report["facts"]["reattach"]["Addr"]["Network"] == "unix"


@pytest.mark.interop
def test_upstream_go_example_plugin_passes(go: GoBinaries) -> None:
    """go-plugin's examples/grpc/plugin-go-grpc, as built from the upstream module."""
    rc, report = run_check("--plugin", "kv_grpc=proto.KV", "--", str(go.upstream_kv_plugin))
    assert rc == 0, report
    assert report["facts"]["discovery"] == "gRPC reflection"
    for service in ("proto.KV", "plugin.GRPCController", "grpc.health.v1.Health"):
        assert service in report["services"]
    assert rows(report)["plugin kv_grpc"]["status"] == "pass"


@pytest.mark.interop
def test_upstream_go_plugin_missing_service_fails(go: GoBinaries) -> None:
    rc, report = run_check("--plugin", "db=proto.DB", "--", str(go.upstream_kv_plugin))
    assert rc == 1
    row = rows(report)["plugin db"]
    assert row["status"] == "fail" and "proto.KV" in row["evidence"]


@pytest.mark.interop
def test_wrong_cookie_fails_with_the_plugins_words(go: GoBinaries) -> None:
    rc, report = run_check("--cookie-value", "nope", "--", str(go.upstream_kv_plugin))
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail"
    # go-plugin's own refusal, as the plugin printed it on stderr
    assert "This binary is a plugin" in row["evidence"], row
    assert rows(report)["shutdown"]["status"] == "skip"


@pytest.mark.interop
def test_wrong_protocol_version_fails(go: GoBinaries) -> None:
    rc, report = run_check("--protocol-version", "7", "--", str(go.upstream_kv_plugin))
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail"
    assert "Incompatible API version" in row["evidence"] or "version" in row["evidence"], row


def test_python_plugin_announcing_unoffered_version_fails() -> None:
    rc, report = run_check(
        "--env", "RAW_ANNOUNCE=1|9|unix|/nonexistent/sock|grpc|",
        "--", *plugin_script("raw_announce.py"),
    )  # fmt: skip
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail", row
    assert "plugin version 9, client versions [1]" in row["evidence"], row


def test_wrong_core_protocol_fails() -> None:
    rc, report = run_check(
        "--env", "RAW_ANNOUNCE=2|1|unix|/nonexistent/sock|grpc|",
        "--", *plugin_script("raw_announce.py"),
    )  # fmt: skip
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail", row
    assert "core" in row["evidence"].lower() and "2" in row["evidence"], row


def test_no_handshake_line_fails_after_the_start_timeout() -> None:
    rc, report = run_check("--start-timeout", "2", "--", *plugin_script("never_announces.py"))
    assert rc == 1
    row = rows(report)["handshake"]
    assert row["status"] == "fail"
    assert "timeout" in row["evidence"].lower(), row
    assert "starting up, slowly" in row["evidence"], row


def test_plugin_ignoring_shutdown_fails() -> None:
    rc, report = run_check("--grace", "1", "--", *plugin_script("ignores_shutdown.py"))
    assert rc == 1
    checks = rows(report)
    assert checks["handshake"]["status"] == "pass"
    assert checks["health"]["status"] == "pass"
    row = checks["shutdown"]
    assert row["status"] == "fail"
    assert "still running 1.0 s later" in row["evidence"], row


def test_table_names_the_failure() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "check", "goplugin", "--start-timeout", "2", "--",
         *plugin_script("never_announces.py")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "handshake" in proc.stdout and "FAIL" in proc.stdout
    assert "evidence:" in proc.stdout
    assert "0 passed" in proc.stdout and "failed" in proc.stdout


def test_inspect_prints_handshake_and_services() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwire", "inspect", "goplugin", "--json", "--env",
         "KV_DIR=/tmp", "--", *KV_PLUGIN],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["facts"]["announce"].startswith("1|1|unix|")
    assert "shutdown" not in rows(report)
    assert "grpc.health.v1.Health" in report["services"]


def test_reflection_probe_is_one_unary_call_per_version() -> None:
    """Reflection is asked with one unary call per version (no stream write that could
    race an immediate UNIMPLEMENTED: grpcio turned that into INTERNAL, seen in CI):
    UNIMPLEMENTED on both means no reflection, any other error is the plugin's."""
    import asyncio

    import grpc

    from plugwire.grpc.goplugin.check import REFLECTION, reflection_services

    def error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
        return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")

    class Channel:
        def __init__(self, answers: dict[str, Any]) -> None:
            self.answers = answers
            self.asked: list[tuple[str, bytes]] = []

        def unary_unary(self, method: str) -> object:
            async def call(request: bytes, timeout: float) -> bytes:
                self.asked.append((method, request))
                answer = self.answers[method]
                if isinstance(answer, BaseException):
                    raise answer
                return bytes(answer)

            return call

    v1, v1alpha = REFLECTION
    none = Channel(
        {v1: error(grpc.StatusCode.UNIMPLEMENTED), v1alpha: error(grpc.StatusCode.UNIMPLEMENTED)}
    )
    assert asyncio.run(reflection_services(none)) is None  # type: ignore[arg-type]
    assert none.asked == [(v1, b"\x3a\x00"), (v1alpha, b"\x3a\x00")]

    # ServerReflectionResponse{list_services_response{service{name: "b.B"}, service{name: "a.A"}}}
    listing = b"\x32\x0e" + b"\x0a\x05\x0a\x03b.B" + b"\x0a\x05\x0a\x03a.A"
    alpha_only = Channel({v1: error(grpc.StatusCode.UNIMPLEMENTED), v1alpha: listing})
    assert asyncio.run(reflection_services(alpha_only)) == ["a.A", "b.B"]  # type: ignore[arg-type]

    broken = Channel({v1: error(grpc.StatusCode.INTERNAL)})
    try:
        asyncio.run(reflection_services(broken))  # type: ignore[arg-type]
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INTERNAL  # a real INTERNAL still fails
    else:
        raise AssertionError("a real INTERNAL answer must not read as 'no reflection'")
