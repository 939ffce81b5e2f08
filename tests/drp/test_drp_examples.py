"""The runnable examples in docs/examples/drp work as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from drp_support import EXAMPLE  # type: ignore[import-not-found,unused-ignore]


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


def test_provider_example_commands() -> None:
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


def test_validate_runs_at_define_with_a_token(tmp_path: Path) -> None:
    script = tmp_path / "validating.py"
    script.write_text(
        "from plugwire.http.drp import PluginProvider, Provider, serve\n"
        "D = PluginProvider(name='v')\n"
        "class P(Provider):\n"
        "    def config(self, ctx, params): pass\n"
        "    def validate(self, ctx):\n"
        "        return PluginProvider(name='v', version='validated-' + ctx.token)\n"
        "    async def unpack(self, ctx, directory):\n"
        "        (directory / 'asset').write_text('async unpack')\n"
        "serve(P, D, version='1')\n"
    )
    subprocess.run(
        [sys.executable, str(script), "unpack", str(tmp_path / "files" / "deep")], check=True
    )
    assert (tmp_path / "files" / "deep" / "asset").read_text() == "async unpack"
    plain = subprocess.run(
        [sys.executable, str(script), "define"], capture_output=True, text=True, check=True
    )
    assert json.loads(plain.stdout)["Version"] == ""
    for token, version in (("catalog", ""), ("tok", "validated-tok")):
        out = subprocess.run(
            [sys.executable, str(script), "define"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "RS_TOKEN": token},
        )
        assert json.loads(out.stdout)["Version"] == version
