"""The one host/controller model holds in the source: one spawn path, one registry."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = Path(__file__).resolve().parents[2] / "packages"
SPAWN_MODULE = PACKAGES / "core" / "src" / "plugwire" / "core" / "process.py"
MANAGED_MODULE = PACKAGES / "core" / "src" / "plugwire" / "core" / "managed.py"
FASTEXIT_MODULE = PACKAGES / "core" / "src" / "plugwire" / "core" / "_fastexit.py"
FORKSERVER_MODULE = PACKAGES / "core" / "src" / "plugwire" / "core" / "forkserver.py"
AHEAD_MODULE = PACKAGES / "core" / "src" / "plugwire" / "core" / "_ahead.py"

FORBIDDEN_CALLS = {
    ("anyio", "open_process"),
    ("anyio", "run_process"),
    ("asyncio", "create_subprocess_exec"),
    ("asyncio", "create_subprocess_shell"),
    ("os", "fork"),
    ("os", "forkpty"),
    ("os", "posix_spawn"),
    ("os", "posix_spawnp"),
    ("os", "system"),
    ("os", "popen"),
}


def _sources() -> list[Path]:
    return [p for p in PACKAGES.rglob("*.py") if "_generated" not in p.parts]


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name == "subprocess"]
        elif isinstance(node, ast.ImportFrom) and node.module == "subprocess":
            found.append("from subprocess import ...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            if pair in FORBIDDEN_CALLS or (pair[0] == "os" and pair[1].startswith("exec")):
                found.append(f"{pair[0]}.{pair[1]}")
    return [f"{path.relative_to(PACKAGES)}:{what}" for what in found]


def test_only_core_process_starts_os_processes() -> None:
    sources = _sources()
    assert SPAWN_MODULE in sources and len(sources) > 100
    offences = [o for p in sources if p != SPAWN_MODULE for o in _offences(p)]
    # a plugin forks copies of itself (never a host's spawn): the fork server's three
    # (the server, a child for a launch that finds no standby, and the standby) and
    # the helper a launch makes its certificates in while it imports
    assert sorted(offences) == [
        f"{AHEAD_MODULE.relative_to(PACKAGES)}:os.fork",
        *[f"{FORKSERVER_MODULE.relative_to(PACKAGES)}:os.fork"] * 3,
    ]
    assert _offences(SPAWN_MODULE), "the check must see process.py's own spawn"


def test_one_managed_registry_with_atexit() -> None:
    users = [p for p in _sources() if "atexit.register" in p.read_text()]
    assert users == [MANAGED_MODULE]
    # the fast exit only runs the handlers others registered
    runners = [p for p in _sources() if "atexit" in p.read_text() and p != MANAGED_MODULE]
    assert runners == [FASTEXIT_MODULE]
    assert "register" not in FASTEXIT_MODULE.read_text().replace("registered", "")
