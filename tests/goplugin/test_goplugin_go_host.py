"""A Go host built on real hashicorp/go-plugin launches plugwire plugins."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from goplugin_support import COUNTER_PLUGIN, KV_PLUGIN, GoBinaries, run_go_host

pytestmark = pytest.mark.interop


def _plugin_levels(report: dict[str, object], message: str) -> list[str]:
    records = report["log_records"]
    assert isinstance(records, list)
    return [r["@level"] for r in records if r.get("@message") == message and r.get("key")]


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
def test_kv_put_get_ping_stdio_logs_kill(
    go: GoBinaries, tmp_path: Path, mtls: bool, mux: bool
) -> None:
    sockets = tmp_path / "tmp"
    sockets.mkdir()
    report = run_go_host(
        go.kvhost,
        KV_PLUGIN,
        ops="put:alpha:one,get:alpha,put:beta:two,get:beta,ping",
        mtls=mtls,
        mux=mux,
        expect_stdout="put beta",
        expect_stderr="put beta",
        env={"KV_DIR": str(tmp_path), "TMPDIR": str(sockets)},
    )
    assert report["ok"], report.get("error")
    assert report["results"] == ["ok", "one", "ok", "two", "pong"]
    assert report["negotiated"] == 1
    # What the plugin printed after the handshake reached SyncStdout/SyncStderr.
    assert report["stdout"] == "kv stdout: put alpha\nkv stdout: put beta\n"
    assert report["stderr"] == "kv stderr: put alpha\nkv stderr: put beta\n"
    # Logging became hclog JSON that go-plugin parsed: level and fields kept.
    assert _plugin_levels(report, "put") == ["info", "info"]
    puts = [r for r in report["log_records"] if r.get("@message") == "put"]
    assert {r["key"] for r in puts} == {"alpha", "beta"}
    # Kill: Shutdown RPC answered, the plugin exited on its own within the grace.
    assert report["exited"] is True
    assert report["kill_graceful"] is True
    assert report["kill_seconds"] < 2.0
    assert (tmp_path / "kv_alpha").read_bytes() == b"one"
    # The plugin listened on a unix socket in its temp dir and removed it on exit.
    assert any(
        r.get("@message") == "plugin address"
        and r.get("network") == "unix"
        and r.get("address", "").startswith(f"{sockets}/plugin")
        for r in report["log_records"]
    )
    assert list(sockets.iterdir()) == []


def test_kv_reports_plugin_errors(go: GoBinaries, tmp_path: Path) -> None:
    report = run_go_host(go.kvhost, KV_PLUGIN, ops="get:missing", env={"KV_DIR": str(tmp_path)})
    assert not report["ok"]
    assert "NotFound" in report["error"] and "missing" in report["error"]
    assert report["kill_graceful"] is True


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
@pytest.mark.parametrize("mtls", [False, True], ids=["plain", "automtls"])
def test_bidirectional_counter_through_broker(
    go: GoBinaries, tmp_path: Path, mtls: bool, mux: bool
) -> None:
    report = run_go_host(
        go.counterhost,
        COUNTER_PLUGIN,
        ops="put:n:3,put:n:4,get:n,put:m:10,get:m",
        mtls=mtls,
        mux=mux,
        env={"KV_DIR": str(tmp_path)},
    )
    assert report["ok"], report.get("error")
    # Each put made the plugin dial the host's AddHelper through the broker.
    assert report["results"] == ["ok", "ok", "7", "ok", "10"]
    assert report["kill_graceful"] is True


def test_negotiates_highest_common_version(go: GoBinaries, tmp_path: Path) -> None:
    from goplugin_support import plugin_script

    report = run_go_host(
        go.kvhost,
        plugin_script("versioned_kv.py"),
        ops="put:k:v,get:k",
        versions="1,2,3",
        env={"KV_DIR": str(tmp_path), "KV_VERSIONS": "2,3,4"},
    )
    assert report["ok"], report.get("error")
    assert report["negotiated"] == 3


def test_no_common_version_is_refused_by_go_host(go: GoBinaries, tmp_path: Path) -> None:
    from goplugin_support import plugin_script

    report = run_go_host(
        go.kvhost,
        plugin_script("versioned_kv.py"),
        ops="ping",
        versions="1",
        env={"KV_DIR": str(tmp_path), "KV_VERSIONS": "2,3"},
    )
    assert not report["ok"]
    assert "incompatible API version" in report["error"]
    assert "Plugin version: 2" in report["error"]


def test_upstream_examples_grpc_host_runs_python_plugin(go: GoBinaries, tmp_path: Path) -> None:
    """go-plugin's own, unmodified examples/grpc host, through its KV_PLUGIN variable."""
    env = {
        **os.environ,
        "KV_PROTO": "grpc",
        "KV_PLUGIN": " ".join(KV_PLUGIN),
        "KV_DIR": str(tmp_path),
    }
    host = str(go.upstream_kv_host)
    _run: dict[str, Any] = {"env": env, "capture_output": True, "text": True, "timeout": 60}
    put = subprocess.run([host, "put", "greeting", "hello world"], **_run)
    assert put.returncode == 0, put.stdout + put.stderr
    get = subprocess.run([host, "get", "greeting"], **_run)
    assert get.returncode == 0, get.stdout + get.stderr
    assert get.stdout == "hello world\n"


def test_upstream_bidirectional_host_runs_python_plugin(go: GoBinaries, tmp_path: Path) -> None:
    """go-plugin's own, unmodified examples/bidirectional host, through COUNTER_PLUGIN."""
    env = {**os.environ, "COUNTER_PLUGIN": " ".join(COUNTER_PLUGIN), "KV_DIR": str(tmp_path)}
    host = str(go.upstream_counter_host)
    _run: dict[str, Any] = {"env": env, "capture_output": True, "text": True, "timeout": 60}
    for value in ("2", "5"):
        put = subprocess.run([host, "put", "hits", value], **_run)
        assert put.returncode == 0, put.stdout + put.stderr
    get = subprocess.run([host, "get", "hits"], **_run)
    assert get.returncode == 0, get.stdout + get.stderr
    assert get.stdout == "7\n"


def test_plugin_run_by_hand_refuses_with_friendly_message() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BASIC_PLUGIN"}
    proc = subprocess.run(KV_PLUGIN, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "This binary is a plugin. These are not meant to be executed directly." in proc.stderr


@pytest.mark.anyio
async def test_go_host_reattaches_to_plugin_started_by_plugwire(
    go: GoBinaries, tmp_path: Path
) -> None:
    """go-plugin's ReattachConfig (as JSON) from a plugwire PluginClient drives a Go host."""
    import json

    import anyio

    from plugwire.grpc.goplugin import ClientConfig, PluginClient
    from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
    from plugwire.grpc.goplugin.examples.kv import KVPlugin

    binary = go.kvhost
    cfg = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=KV_PLUGIN,
        env={"KV_DIR": str(tmp_path)},
    )
    async with PluginClient(cfg) as client:
        await client.dispense("kv_grpc").Put(kv_pb2.PutRequest(key="shared", value=b"from python"))
        rc = client.reattach_config()
        assert rc is not None
        data = json.dumps({**rc.to_json(), "Test": True})  # Test: the Go host must not kill it
        report = await anyio.to_thread.run_sync(
            lambda: run_go_host(binary, [], ops="get:shared,ping", reattach=data)
        )
        assert report["ok"], report.get("error")
        assert report["results"] == ["from python", "pong"]
        await client.ping()  # still serving after the Go host left


@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
def test_go_host_python_plugin_over_tcp_with_automtls(
    go: GoBinaries, tmp_path: Path, mux: bool
) -> None:
    from goplugin_support import plugin_script

    report = run_go_host(
        go.kvhost,
        plugin_script("versioned_kv.py"),
        ops="put:t:cp,get:t,ping",
        mtls=True,
        mux=mux,
        env={"KV_DIR": str(tmp_path), "NETWORK": "tcp"},
    )
    assert report["ok"], report.get("error")
    assert report["results"] == ["ok", "cp", "pong"]
    # go-plugin's default port range for its plugins is 10000..25000.
    addresses = [r for r in report["log_records"] if r.get("@message") == "plugin address"]
    assert len(addresses) == 1 and addresses[0]["network"] == "tcp"
    assert addresses[0]["address"].startswith("127.0.0.1:")
    port = int(addresses[0]["address"].rsplit(":", 1)[1])
    assert 10000 <= port <= 25000
