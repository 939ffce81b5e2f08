"""Build the Go interop harnesses under ``tests/interop/<name>/`` into a cache.

Each harness is its own Go module that depends on upstream modules through the Go
module proxy. Binaries are cached under ``$PLUGWIRE_CACHE`` (default
``~/.cache/plugwire``) in ``go/<harness>/<key>/`` where the key hashes the Go version,
the harness sources, ``go.mod``/``go.sum`` and the package path: a warm run reuses
them, any change rebuilds. Nothing built here is committed.

Usage::

    binary = build_go("goplugin", "./cmd/kvhost")            # a harness package
    binary = build_go("nri", "github.com/containerd/nri/plugins/logger")  # upstream
    binary = build_go(                                                    # flags, part key
        "terraform", "github.com/hashicorp/terraform", name="terraform",
        flags=["-ldflags=-s -w"], sources=["go.mod", "go.sum", "stubs"],
    )

``flags`` go to ``go build`` and ``env`` into its environment; both are part of the
key. ``sources`` narrows the harness files hashed into the key to those paths
(relative to the harness), so a binary that does not depend on the rest of the harness
(an upstream command) is not rebuilt when the rest changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parent.parent / "interop"


def cache_dir() -> Path:
    root = os.environ.get("PLUGWIRE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "plugwire"
    )
    return Path(root)


def require_tool(name: str, install_hint: str) -> str:
    """The path of ``name``; skip (fail on CI) naming how to install it when missing."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found: {install_hint}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _go_version(go: str) -> str:
    return subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _source_digest(module: Path, sources: Sequence[str] | None = None) -> str:
    h = hashlib.sha256()
    roots = [module / s for s in sources] if sources is not None else [module]
    files = {p for r in roots for p in ([r] if r.is_file() else r.rglob("*"))}
    for path in sorted(files):
        if path.is_file() and path.suffix in {".go", ".mod", ".sum", ".proto"}:
            h.update(str(path.relative_to(module)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def build_go(
    harness: str,
    package: str,
    *,
    name: str | None = None,
    timeout: float = 1800,
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    sources: Sequence[str] | None = None,
) -> Path:
    """Build ``package`` in the harness module ``tests/interop/<harness>``; return the binary.

    ``flags``/``env``: extra ``go build`` arguments and environment; ``sources``: the
    harness paths the cache key hashes (default: the whole harness). See the module doc.
    """
    go = require_tool(
        "go", "install Go >= 1.22 (https://go.dev/dl/) to build the interop harnesses"
    )
    module = INTEROP / harness
    if not (module / "go.mod").is_file():
        raise FileNotFoundError(f"no Go module at {module}")
    binname = name or package.rstrip("/").rsplit("/", 1)[-1].lstrip(".") or harness
    key = hashlib.sha256(
        "\0".join(
            [
                _go_version(go),
                _source_digest(module, sources),
                package,
                *flags,
                *sorted(f"{k}={v}" for k, v in (env or {}).items()),
            ]
        ).encode()
    ).hexdigest()[:16]
    out_dir = cache_dir() / "go" / harness / key
    binary = out_dir / binname
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        build_env = dict(os.environ, CGO_ENABLED=os.environ.get("CGO_ENABLED", "0"))
        build_env.setdefault("GOFLAGS", "-mod=mod -buildvcs=false")
        build_env.update(env or {})
        tmp = out_dir / f".{binname}.tmp"
        started = time.monotonic()
        proc = subprocess.run(
            [go, "build", "-trimpath", *flags, "-o", str(tmp), package],
            cwd=module,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"go build {package} in {module} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        tmp.rename(binary)
        (out_dir / f"{binname}.buildtime").write_text(f"{time.monotonic() - started:.1f}\n")
    return binary
