"""Helpers of the issue-21 core tests (identity, write-only, deferral, conformance).

:func:`terraform_experiments_binary` is the harness's terraform CLI built with
terraform's experiments allowed (``-X main.experimentsAllowed=yes``; terraform's
``experiments.go``): only such a build accepts ``plan -allow-deferral``. The flags are
exactly those of the state-store tests' experiments build, so both share one cached
binary (build_go keys the cache by flags and sources); the plain ``terraform_binary``
is untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from support.gobuild import build_go

#: plugwire's example provider, as the command the terraform CLI launches.
PYTHON_PROVIDER = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]

_EXPERIMENTS_LDFLAGS = (
    "-ldflags=-s -w -X github.com/hashicorp/terraform/version.dev=no -X main.experimentsAllowed=yes"
)


def terraform_experiments_binary() -> Path:
    """terraform v1.16.4 with experiments allowed (a second cached build)."""
    return build_go(
        "terraform",
        "github.com/hashicorp/terraform",
        name="terraform",
        flags=[_EXPERIMENTS_LDFLAGS],
        sources=["go.mod", "go.sum", "stubs"],
        timeout=3600,
    )


def flat(text: str) -> str:
    """CLI output with the diagnostic box margin and line breaks folded to spaces."""
    return " ".join(text.replace("│", " ").replace("╷", " ").replace("╵", " ").split())


def schema_diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Every difference between two ``providers schema -json`` documents, one line per
    field (``path: left != right``); empty when they are equal field by field."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else key
            if key not in a:
                out.append(f"{sub}: missing != {b[key]!r}")
            elif key not in b:
                out.append(f"{sub}: {a[key]!r} != missing")
            else:
                out += schema_diff(a[key], b[key], sub)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in schema_diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
