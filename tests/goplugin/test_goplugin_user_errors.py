"""Issue 20 items 6 and 7: what a user sees when the plugin cannot run or be reached."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from goplugin_support import KV_PLUGIN, plugin_script

from plugwire.core.errors import PluginExitedError, PluginStartError, PlugwireError
from plugwire.grpc.goplugin import ClientConfig, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = pytest.mark.anyio


def _config(cmd: Sequence[str], tmp_path: Path, **kw: object) -> ClientConfig:
    base: dict[str, object] = {
        "handshake": HANDSHAKE,
        "plugins": {"kv_grpc": KVPlugin()},
        "cmd": list(cmd),
        "env": {"KV_DIR": str(tmp_path)},
        "start_timeout": 30,
    }
    base.update(kw)
    return ClientConfig(**base)  # type: ignore[arg-type]


async def _start_error(cfg: ClientConfig) -> PlugwireError:
    client = PluginClient(cfg)
    with pytest.raises(PlugwireError) as info:
        await client.start()
    assert client.pid is None or client.exited
    return info.value


# -- item 6 ---------------------------------------------------------------------


async def test_file_that_is_not_executable_says_so(tmp_path: Path) -> None:
    plugin = tmp_path / "kv-plugin"
    plugin.write_text("#!/bin/sh\nexit 0\n")
    plugin.chmod(0o644)
    err = await _start_error(_config([str(plugin)], tmp_path))
    assert isinstance(err, PluginStartError)
    assert "is not executable" in err.message and str(plugin) in err.message
    assert "-rw-r--r--" in err.message and "no such" not in err.message
    assert err.peer == "kv-plugin" and err.step == "start"


async def test_directory_is_not_a_plugin(tmp_path: Path) -> None:
    err = await _start_error(_config([str(tmp_path)], tmp_path))
    assert isinstance(err, PluginStartError) and "is a directory" in err.message


async def test_missing_file_is_still_no_such_executable(tmp_path: Path) -> None:
    err = await _start_error(_config([str(tmp_path / "absent")], tmp_path))
    assert isinstance(err, PluginStartError) and "no such executable" in err.message


# -- item 7 ---------------------------------------------------------------------


async def test_start_fails_when_nobody_listens_at_the_announced_address(tmp_path: Path) -> None:
    address = tmp_path / "nothing.sock"
    cfg = _config(
        plugin_script("raw_announce.py"),
        tmp_path,
        env={"RAW_ANNOUNCE": f"1|1|unix|{address}|grpc|"},
        kill_grace=0.5,
    )
    started = time.monotonic()
    err = await _start_error(cfg)
    assert isinstance(err, PluginStartError), repr(err)
    assert err.step == "health check" and str(address) in err.message
    assert "UNAVAILABLE" in str(err.seen)
    assert time.monotonic() - started < 10  # one bounded round trip, then the stop


async def test_start_fails_for_a_tcp_address_nobody_listens_on(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _config(
        plugin_script("raw_announce.py"),
        tmp_path,
        env={"RAW_ANNOUNCE": f"1|1|tcp|127.0.0.1:{port}|grpc|"},
        kill_grace=0.5,
    )
    err = await _start_error(cfg)
    assert isinstance(err, PluginStartError) and f"127.0.0.1:{port}" in err.message


async def test_plugin_dying_right_after_announcing_is_plugin_exited(tmp_path: Path) -> None:
    cfg = _config(plugin_script("dies_mid_call.py"), tmp_path)
    # dies_mid_call serves normally: start succeeds and the check passed
    async with PluginClient(cfg) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="x", value=b"fine"))
        with pytest.raises(PluginExitedError):
            await kv.Put(kv_pb2.PutRequest(key="crash", value=b""))


async def test_a_working_plugin_starts_and_answers(tmp_path: Path) -> None:
    async with PluginClient(_config(KV_PLUGIN, tmp_path)) as client:
        await client.ping()


# -- item 8 ---------------------------------------------------------------------


def test_records_are_hclog_json_lines() -> None:
    import json
    import logging

    from plugwire.grpc.goplugin.logs import GoHclogFormatter

    fmt = GoHclogFormatter()
    record = logging.LogRecord(
        "plugwire.grpc.goplugin.server", 10, __file__, 1, "plugin address", None, None
    )
    record.network, record.address = "unix", "/tmp/plugin1"
    line = fmt.format(record)
    # go-hclog writes a map with encoding/json: keys sorted, compact
    assert line.startswith('{"@level":"debug","@message":"plugin address","@timestamp":"')
    obj = json.loads(line)
    assert list(obj) == sorted(obj) and "@module" not in obj  # the Go server's logger is unnamed
    assert (obj["address"], obj["network"]) == ("/tmp/plugin1", "unix")
    # hclog's time format: 2006-01-02T15:04:05.000000Z07:00
    import re

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)", obj["@timestamp"]
    ), obj["@timestamp"]
    named = logging.LogRecord("kv", 20, __file__, 1, "put", None, None)
    named.key = "a"
    assert json.loads(fmt.format(named))["@module"] == "kv"


def _host_lines(stderr: str, message: str) -> list[str]:
    """The upstream host's rendering of one plugin record, without values that
    differ from run to run (time, socket path)."""
    import re

    out = []
    for line in stderr.splitlines():
        if f"[DEBUG] plugin.sh: {message}" in line:
            line = line.split(" ", 1)[1]  # the host's own time
            line = re.sub(r"address=/tmp/plugin\S+", "address=<sock>", line)
            line = re.sub(r"timestamp=\S+", "timestamp=<t>", line)
            # the host walks a Go map for the key/values: their order is random
            head, _, pairs = line.rpartition(": ")
            out.append(f"{head}: {' '.join(sorted(pairs.split()))}")
    return out


@pytest.mark.goplugin
@pytest.mark.interop
def test_upstream_host_shows_our_record_as_it_shows_a_go_plugins(tmp_path: Path) -> None:
    """go-plugin's own examples/grpc host, its Go example plugin, then ours."""
    import os
    import subprocess

    from goplugin_support import GoBinaries

    go = GoBinaries()
    rendered = {}
    for which, plugin in (("go", str(go.upstream_kv_plugin)), ("python", " ".join(KV_PLUGIN))):
        env = {**os.environ, "KV_PROTO": "grpc", "KV_PLUGIN": plugin, "KV_DIR": str(tmp_path)}
        proc = subprocess.run(
            [str(go.upstream_kv_host), "put", "k", "v"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        rendered[which] = _host_lines(proc.stderr, "plugin address")
    assert rendered["go"] == [
        "[DEBUG] plugin.sh: plugin address: address=<sock> network=unix timestamp=<t>"
    ]
    assert rendered["python"] == rendered["go"]
