"""The drp family of ``plugwire demo`` runs its bundled provider for real."""

from __future__ import annotations

from importlib import metadata

import pytest

from plugwire.http.drp._demo import demo

pytestmark = pytest.mark.anyio


def test_registered() -> None:
    names = {ep.name: ep.value for ep in metadata.entry_points(group="plugwire.demos")}
    assert names.get("drp") == "plugwire.http.drp._demo:demo"


async def test_demo_rows_all_ok() -> None:
    rows = await demo()
    assert [r.check for r in rows] == [
        "define",
        "unpack",
        "listen + READY!",
        "action round trips",
        "missing param refused",
        "provider error typed",
        "stop",
    ]
    failed = [r for r in rows if not r.ok]
    assert not failed, failed
    assert all(r.family == "drp" for r in rows)
