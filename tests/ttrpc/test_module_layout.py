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


def test_split_modules_are_lower_than_their_drivers() -> None:
    # client -> _client_stream -> _calls: streams and call bookkeeping never import the client
    assert "client" not in _imported_modules(PKG / "_client_stream.py")
    assert {"client", "_client_stream"}.isdisjoint(_imported_modules(PKG / "_calls.py"))
    assert {"_calls", "_client_stream"} <= _imported_modules(PKG / "client.py")
    # nri: result -> _result_fields -> owners; stub -> _plugin_service
    nri_dir = PKG / "nri"
    assert "result" not in _imported_modules(nri_dir / "_result_fields.py")
    owners_imports = _imported_modules(nri_dir / "owners.py")
    assert {"result", "_result_fields", "adjust"}.isdisjoint(owners_imports)
    assert "owners" in _imported_modules(nri_dir / "adjust.py")
    assert "result" not in _imported_modules(nri_dir / "adjust.py")
    assert {"_result_fields", "owners"} <= _imported_modules(nri_dir / "result.py")
    assert "stub" not in _imported_modules(nri_dir / "_plugin_service.py")
    assert "_plugin_service" in _imported_modules(nri_dir / "stub.py")


def test_public_paths_survive_the_split() -> None:
    from plugwire.ttrpc import client
    from plugwire.ttrpc.nri import result, stub

    assert ttrpc.ClientStream is client.ClientStream
    assert set(client.__all__) == {
        "Client",
        "ClientStream",
        "Metadata",
        "normalize_metadata",
        "split_method",
    }
    assert nri.Owners is result.Owners
    assert nri.Result.__module__ == "plugwire.ttrpc.nri.result"
    assert set(result.__all__) == {"Owners", "Result", "is_marked_for_removal", "mark_for_removal"}
    assert all(hasattr(result, name) for name in result.__all__)
    assert set(stub.__all__) == {"HANDLER_EVENTS", "Stub"}
    assert "create_container" in stub.HANDLER_EVENTS
