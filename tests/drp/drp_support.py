"""Helpers shared by the drp tests and benchmarks/drp_action.py.

(A uniquely named module rather than ``conftest``: several test folders import
helpers, and ``conftest`` would resolve to whichever folder's was loaded first.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from plugwire.http import Request, Response

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "drp" / "incrementer.py"
PROVIDERS = HERE / "providers"
TOKEN = "s3cr3t-token"


def python_provider(script: Path) -> list[str]:
    return [sys.executable, str(script)]


class FakeApi:
    """The few dr-provision API calls incrementer makes: machine params."""

    def __init__(self) -> None:
        self.params: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str]] = []
        self.endpoint = ""

    async def __call__(self, request: Request) -> Response:
        self.calls.append((request.method, request.path))
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Response.json({"Code": 401, "Messages": ["bad token"]}, 401)
        parts = request.path.strip("/").split("/", 5)
        if len(parts) != 6 or parts[:3] != ["api", "v3", "machines"] or parts[4] != "params":
            return Response.json({"Code": 404, "Messages": [request.path]}, 404)
        key = (parts[3], parts[5])
        if request.method == "GET":
            return Response.json(self.params.get(key))
        if request.method == "POST":
            self.params[key] = json.loads(request.body)
            return Response.json(self.params[key])
        if request.method == "DELETE":
            return Response.json(self.params.pop(key, None))
        return Response.json({"Code": 405}, 405)
