"""A provider whose ``unpack`` does what UNPACK_MODE says (tests/security)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from plugwire.http.drp import PluginProvider, Provider, ProviderContext, serve

MODE = os.environ.get("UNPACK_MODE", "")
OUTSIDE = os.environ.get("UNPACK_OUTSIDE", "")


class Unpacker(Provider):
    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        return None

    def unpack(self, ctx: ProviderContext, directory: Path) -> dict[str, str] | None:
        Path(OUTSIDE, "provider-ran").write_text(MODE)
        if MODE == "names":
            # Names as the provider's peer data gives them: returned, so checked.
            return {"ok.txt": "ok", **{n: "x" for n in os.environ["UNPACK_NAMES"].split(",")}}
        if MODE == "raw-symlink":
            # A provider that bypasses the helper and plants a link leaving the dir.
            os.symlink(OUTSIDE, directory / "escape")
            return None
        if MODE == "raw-through-symlink":
            os.symlink(OUTSIDE, directory / "sub")
            (directory / "sub" / "written-through").write_text("x")
            return None
        return {"ok.txt": "ok", "assets/inner.txt": "inner"}


DEFINITION = PluginProvider(name="unpacker", plugin_version=4)

if __name__ == "__main__":
    serve(Unpacker, DEFINITION, version="1.0.0")
