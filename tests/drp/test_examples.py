"""The runnable examples in docs/examples/drp work as documented."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import EXAMPLE  # type: ignore[import-not-found,unused-ignore]


def test_server_example_hosts_the_python_incrementer() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE.parent / "server.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "incrstatus -> Running" in out
    assert "increment by 1 -> 1" in out and "increment by 2 -> 3" in out
    assert "refused before the call: Missing required params" in out
    assert "reset_count -> Success" in out
    assert "provider exit status: 0" in out


def test_provider_example_commands(tmp_path: object) -> None:
    define = subprocess.run(
        [sys.executable, str(EXAMPLE), "define"], capture_output=True, text=True, check=True
    )
    doc = json.loads(define.stdout)
    assert doc["Name"] == "incrementer" and doc["PluginVersion"] == 4
    version = subprocess.run(
        [sys.executable, str(EXAMPLE), "version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("Version: ")
    bad = subprocess.run(
        [sys.executable, str(EXAMPLE), "listen", "only-one"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Missing argument" in bad.stderr
