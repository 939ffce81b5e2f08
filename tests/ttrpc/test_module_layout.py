"""Module layering of plugwire.ttrpc: no import circle, one meaning per name."""

from __future__ import annotations

import ast
from pathlib import Path

import plugwire.ttrpc as ttrpc
from plugwire.ttrpc import nri

PKG = Path(ttrpc.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Relative modules a source file imports (``from .x import ...``), at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(node.module or "")
    return found


def test_lower_modules_do_not_import_the_server() -> None:
    # server -> service -> _connection; the server hands its registry down
    assert "server" not in _imported_modules(PKG / "service.py")
    assert "server" not in _imported_modules(PKG / "_connection.py")
    assert "service" not in _imported_modules(PKG / "_connection.py")
    assert {"service", "_connection"} <= _imported_modules(PKG / "server.py")


def test_names_mean_one_thing() -> None:
    assert not hasattr(ttrpc, "Stub")  # the NRI plugin stub keeps upstream's name
    assert ttrpc.ServiceClient.__module__ == "plugwire.ttrpc.service"
    assert nri.Stub.__module__ == "plugwire.ttrpc.nri.stub"
    assert not hasattr(ttrpc.credentials, "Handshake")  # core.Handshake is the handshake
    assert ttrpc.PeerCheck is ttrpc.credentials.PeerCheck
