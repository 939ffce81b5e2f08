"""docs/examples/goplugin/run_go_host.sh builds the go-plugin version the interop harness
pins (tests/docs/test_docs_code_blocks.py runs the script through docs/goplugin.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "examples" / "goplugin" / "run_go_host.sh"


def test_script_builds_the_go_plugin_version_the_interop_harness_uses() -> None:
    gomod = (ROOT / "tests" / "interop" / "goplugin" / "go.mod").read_text()
    [pinned] = re.findall(r"^\s*github\.com/hashicorp/go-plugin (v\S+)", gomod, flags=re.M)
    [default] = re.findall(
        r'^version="\$\{GO_PLUGIN_VERSION:-(v[^}]+)\}"$', SCRIPT.read_text(), re.M
    )
    assert default == pinned


def test_docs_page_runs_the_script_unmarked() -> None:
    page = (ROOT / "docs" / "goplugin.md").read_text()
    block = re.search(r"```sh\n(bash docs/examples/goplugin/run_go_host\.sh[^\n]*)\n```", page)
    assert block, "docs/goplugin.md has no sh block running run_go_host.sh"
    before = page[: block.start()].rstrip().splitlines()[-1]
    assert "not-runnable" not in before, before
    assert "GOMODCACHE" not in page
