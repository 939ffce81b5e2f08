"""The API reference covers every public module of every public package.

docs/api/<page>.md renders a package with ``::: plugwire.x`` (every name in its
``__all__``); a public submodule (no leading underscore) defining public names the
package does not export needs its own ``::: plugwire.x.sub`` block on that page, listing
those names in ``members:`` (or rendering the whole module). A new module or name that
nobody added to the reference fails here, not silently on the site.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
PAGES = {
    "plugwire.core": "core",
    "plugwire.core.tasks": "core-tasks",
    "plugwire.grpc": "grpc",
    "plugwire.grpc.goplugin": "grpc-goplugin",
    "plugwire.grpc.cipd": "grpc-cipd",
    "plugwire.grpc.tasks": "grpc-tasks",
    "plugwire.ttrpc": "ttrpc",
    "plugwire.ttrpc.nri": "ttrpc-nri",
    "plugwire.http": "http",
    "plugwire.http.drp": "http-drp",
    "plugwire.kube": "kube",
}
_BLOCK = re.compile(
    r"^::: (?P<module>\S+)\n(?P<options>(?:    .*\n)*)",
    re.MULTILINE,
)
_MEMBERS = re.compile(r"^\s+members:\s*\[(?P<names>[^\]]*)\]", re.MULTILINE)


def _public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ]
    return [n for n in names if not isinstance(getattr(module, n, None), types.ModuleType)]


def _blocks(page: Path) -> dict[str, set[str] | None]:
    """module -> the members its block lists (None: the whole module)."""
    found: dict[str, set[str] | None] = {}
    for m in _BLOCK.finditer(page.read_text(encoding="utf-8") + "\n"):
        members = _MEMBERS.search(m.group("options"))
        found[m.group("module")] = (
            {n.strip() for n in members.group("names").split(",") if n.strip()} if members else None
        )
    return found


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES.values():
        assert f"api/{page}.md" in config, f"api/{page}.md is not in mkdocs.yml's nav"


def test_block_parser(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# x\n\n::: a.b\n\n::: a.b.c\n    options:\n      members: [X, y]\n")
    assert _blocks(page) == {"a.b": None, "a.b.c": {"X", "y"}}


@pytest.mark.parametrize("package", sorted(PAGES))
def test_page_covers_the_package(package: str) -> None:
    page = API / f"{PAGES[package]}.md"
    blocks = _blocks(page)
    assert blocks.get(package, set()) is None, f"{page.name}: no '::: {package}' block"
    pkg = importlib.import_module(package)
    exported = {id(getattr(pkg, n)) for n in getattr(pkg, "__all__", ()) if hasattr(pkg, n)}
    uncovered: list[str] = []
    for info in pkgutil.iter_modules(pkg.__path__):
        full = f"{package}.{info.name}"
        if info.name.startswith("_") or full in PAGES:
            continue
        module = importlib.import_module(full)
        names = [n for n in _public_names(module) if id(getattr(module, n)) not in exported]
        if not names or (full in blocks and blocks[full] is None):
            continue
        listed = blocks.get(full) or set()
        uncovered += [f"{full}.{n}" for n in names if n not in listed]
        for name in listed - set(_public_names(module)):
            uncovered.append(f"{full}.{name} (listed, but not a public name of the module)")
    assert not uncovered, f"{page.name} does not document: {uncovered}"
