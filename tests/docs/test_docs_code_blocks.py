"""Every code block of the pages under docs/ runs, or says why it cannot.

* A block marked ``<!-- not-runnable: REASON -->`` (the nearest non-blank line before
  its fence) must give a reason; it is not run.
* An unmarked ``python`` block is a complete program: it runs in a fresh interpreter
  and must exit 0.
* An unmarked ``sh``/``bash``/``console`` block runs under ``bash -e`` and must exit 0
  (only cheap, local commands are left unmarked: the bundled examples).
* An unmarked ``json`` block must parse.
* Any other block (output samples, diagrams, no language) must be marked.

Blocks run in a scratch directory holding a copy of ``docs/examples`` (what they
write stays there), with this environment's ``python`` and ``plugwire`` first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*not-runnable:(?P<reason>.*?)-->\s*$")
_MARKER_START = re.compile(r"^\s*<!--\s*not-runnable\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # the marker line, when there is one
    reason: str | None  # its reason, stripped ("" when empty)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(DOCS).as_posix()}:{self.line}"


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group("indent"), m.group("fence")
        info = m.group("info").strip()
        lang = info.split()[0].strip("{}.").lower() if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = lines[j].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = lines[k] if k >= 0 and _MARKER_START.match(lines[k]) else None
        mm = _MARKER.match(marker) if marker else None
        reason = mm.group("reason").strip() if mm else None
        found.append(Block(page, i + 1, lang, "\n".join(body) + "\n", marker, reason))
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in blocks(p)]


PYTHON = {"python", "py", "python3"}
SHELL = {"sh", "bash", "shell", "console"}
TIMEOUT = 120

BLOCKS = all_blocks()
UNMARKED = [b for b in BLOCKS if b.marker is None]
MARKED = [b for b in BLOCKS if b.marker is not None]


def _ids(items: list[Block]) -> list[str]:
    return [b.id for b in items]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    shutil.copytree(DOCS / "examples", tmp_path / "docs" / "examples")
    return tmp_path


def _run(argv: list[str], cwd: Path, block: Block) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONSAFEPATH", None)
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert proc.returncode == 0, (
        f"{block.id}: the {block.lang} block exited {proc.returncode}\n"
        f"--- block ---\n{block.code}--- stdout ---\n{proc.stdout[-3000:]}"
        f"--- stderr ---\n{proc.stderr[-3000:]}"
    )


def test_pages_have_blocks() -> None:
    # the collector sees the fences: a page set without any block means a parser bug
    assert len(pages()) >= 12
    assert len(BLOCKS) >= 40
    assert {b.lang for b in BLOCKS} >= {"python", "sh"}


def test_collector_reads_markers_and_indented_fences(tmp_path: Path) -> None:
    text = (
        "intro\n\n<!-- not-runnable: needs a running NRI runtime -->\n\n```python\nx = 1\n```\n"
        "- item\n\n  ```sh\n  echo hi\n  ```\n<!-- not-runnable: -->\n```text\nout\n```\n"
    )
    fake = tmp_path / "page.md"
    fake.write_text(text)
    found = blocks(fake)
    assert [(b.lang, b.reason, b.code) for b in found] == [
        ("python", "needs a running NRI runtime", "x = 1\n"),
        ("sh", None, "echo hi\n"),
        ("text", "", "out\n"),
    ]


@pytest.mark.parametrize("block", MARKED, ids=_ids(MARKED))
def test_marked_block_gives_a_reason(block: Block) -> None:
    assert block.reason, (
        f"{block.id}: marker {block.marker!r} must read <!-- not-runnable: REASON -->"
    )


@pytest.mark.parametrize("block", UNMARKED, ids=_ids(UNMARKED))
def test_unmarked_block_runs(block: Block, scratch: Path) -> None:
    if block.lang in PYTHON:
        script = scratch / "block.py"
        script.write_text(block.code)
        _run([sys.executable, str(script)], scratch, block)
    elif block.lang in SHELL:
        _run(["bash", "-e", "-o", "pipefail", "-c", block.code], scratch, block)
    elif block.lang == "json":
        json.loads(block.code)
    else:
        pytest.fail(
            f"{block.id}: a {block.lang or 'plain'} block cannot run: "
            "mark it <!-- not-runnable: REASON --> before its fence"
        )
