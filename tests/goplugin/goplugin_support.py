"""Helpers for the go-plugin tests: Go harness binaries and Python plugin commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.gobuild import build_go

PLUGINS = Path(__file__).parent / "plugins"
PY = sys.executable

#: The bundled Python plugins, as commands.
KV_PLUGIN = [PY, "-m", "plugwire.grpc.goplugin.examples.kv"]
COUNTER_PLUGIN = [PY, "-m", "plugwire.grpc.goplugin.examples.counter"]


def plugin_script(name: str) -> list[str]:
    """A test plugin under tests/goplugin/plugins/ as a command."""
    return [PY, str(PLUGINS / name)]


class GoBinaries:
    """Go harnesses built on demand (cached across runs by support.gobuild)."""

    def __getattr__(self, name: str) -> Path:
        packages = {
            "kvhost": "./cmd/kvhost",
            "counterhost": "./cmd/counterhost",
            "kvplugin": "./cmd/kvplugin",
            "counterplugin": "./cmd/counterplugin",
            "upstream_kv_host": "github.com/hashicorp/go-plugin/examples/grpc",
            "upstream_kv_plugin": "github.com/hashicorp/go-plugin/examples/grpc/plugin-go-grpc",
            "upstream_counter_host": "github.com/hashicorp/go-plugin/examples/bidirectional",
            "upstream_counter_plugin": (
                "github.com/hashicorp/go-plugin/examples/bidirectional/plugin-go-grpc"
            ),
        }
        if name not in packages:
            raise AttributeError(name)
        path = build_go("goplugin", packages[name], name=name)
        setattr(self, name, path)
        return path


def run_go_host(
    binary: Path,
    plugin: Sequence[str],
    *,
    ops: str,
    mtls: bool = False,
    mux: bool = False,
    versions: str = "1",
    expect_stdout: str = "",
    expect_stderr: str = "",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    reattach: str = "",
) -> dict[str, Any]:
    """Run a harness host (kvhost/counterhost) against ``plugin``; return its JSON report."""
    args = [str(binary), "-ops", ops, "-versions", versions]
    if mtls:
        args.append("-mtls")
    if mux:
        args.append("-mux")
    if expect_stdout:
        args += ["-expect-stdout", expect_stdout]
    if expect_stderr:
        args += ["-expect-stderr", expect_stderr]
    if reattach:
        args += ["-reattach", reattach]
    proc = subprocess.run(
        [*args, "--", *plugin],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from {binary.name}: rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    report["log_records"] = [json.loads(line) for line in report["logs"] if line.startswith("{")]
    return report
