"""docs/examples/goplugin/kv: the plugin under go-plugin's own example host; the host example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from goplugin_support import GoBinaries

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "goplugin" / "kv"
PLUGIN = f"{sys.executable} {EXAMPLES / 'plugin.py'}"


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    kw: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60, "cwd": cwd}
    return subprocess.run(cmd, env={**os.environ, **env}, **kw)


@pytest.mark.interop
def test_upstream_host_runs_docs_plugin(go: GoBinaries, tmp_path: Path) -> None:
    host = str(go.upstream_kv_host)
    put = _run([host, "put", "hello", "world"], tmp_path, KV_PROTO="grpc", KV_PLUGIN=PLUGIN)
    assert put.returncode == 0, put.stdout + put.stderr
    # go-plugin's host logged the plugin's hclog line with its level and fields.
    assert "[INFO]" in put.stderr and "stored" in put.stderr and "key=hello" in put.stderr
    get = _run([host, "get", "hello"], tmp_path, KV_PROTO="grpc", KV_PLUGIN=PLUGIN)
    assert get.returncode == 0, get.stdout + get.stderr
    assert get.stdout == "world\n"


def test_host_example_with_python_plugin(tmp_path: Path) -> None:
    host = [sys.executable, str(EXAMPLES / "host.py")]
    put = _run([*host, "put", "colour", "blue"], tmp_path)
    assert put.returncode == 0, put.stderr
    assert "stored colour" in put.stdout  # the plugin's print, synced over GRPCStdio
    get = _run([*host, "get", "colour"], tmp_path)
    assert (get.returncode, get.stdout) == (0, "blue\n"), get.stderr
    missing = _run([*host, "get", "nothing"], tmp_path)
    assert missing.returncode == 1
    assert "[NOT_FOUND]" in missing.stderr and "nothing" in missing.stderr


@pytest.mark.interop
def test_host_example_with_upstream_go_plugin(go: GoBinaries, tmp_path: Path) -> None:
    host = [sys.executable, str(EXAMPLES / "host.py"), "--plugin", str(go.upstream_kv_plugin)]
    put = _run([*host, "put", "k", "v"], tmp_path)
    assert put.returncode == 0, put.stderr
    get = _run([*host, "get", "k"], tmp_path)
    assert get.returncode == 0, get.stderr
    assert get.stdout == "v\n\nWritten from plugin-go-grpc\n"


WIRES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "goplugin" / "wires"
WIRES_OUT = "get hello -> world\nget missing -> code 5\nplugin printed: plugin stdout: put hello\n"


def test_wires_example_negotiates_ttrpc_and_can_refuse_it(tmp_path: Path) -> None:
    host = [sys.executable, str(WIRES / "host.py")]
    for args, wire in (
        ([], "ttrpc"),
        (["--wires", "grpc"], "grpc"),
        (["--wires", "ttrpc"], "ttrpc"),
    ):
        run = _run([*host, *args], tmp_path)
        assert run.returncode == 0, run.stderr
        # the last line is what the plugin printed, synced over GRPCStdio on either wire
        assert run.stdout == f"protocol={wire}\n{WIRES_OUT}", run.stdout


@pytest.mark.interop
def test_wires_example_with_upstream_go_plugin(go: GoBinaries, tmp_path: Path) -> None:
    host = [sys.executable, str(WIRES / "host.py"), "--plugin", str(go.upstream_kv_plugin)]
    run = _run(host, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("protocol=grpc\nget hello -> world"), run.stdout
    forced = _run([*host, "--wires", "ttrpc"], tmp_path)
    assert forced.returncode == 1
    assert "UnsupportedProtocolError" in forced.stderr and "seen=grpc" in forced.stderr
