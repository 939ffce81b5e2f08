"""The example state-store provider ``fsstate``: Terraform's state in a directory.

Configure it as the working directory's state storage (Terraform with experiments
allowed; ``state_store`` is experimental upstream)::

    terraform {
      required_providers {
        fsstate = { source = "plugwire/fsstate" }
      }
      state_store "fsstate_dir" {
        provider "fsstate" {}
        path = "/var/lib/tfstate/project"
      }
    }

State store ``fsstate_dir``: each state (workspace) is ``<path>/<id>.tfstate``,
written atomically (a temporary file renamed over it). Its lock is
``<path>/<id>.tflock``, created exclusively (``O_EXCL``) and holding the
:class:`~plugwire.grpc.terraform.LockInfo` as JSON, so two Terraform runs on one
machine (or on a shared filesystem with atomic exclusive create) exclude each other:
the second gets "Workspace Already Locked" naming the lock ID and holder, and
``terraform force-unlock <id>`` removes it. ``chunk_size`` (optional) is the
chunk size the store asks for instead of Terraform's 8 MiB (to see chunking).

Run as ``python -m plugwire.grpc.terraform.examples.fsstate``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NoReturn

from plugwire.grpc.terraform import (
    Attribute,
    Between,
    Context,
    LockHeld,
    LockInfo,
    LockMismatch,
    Provider,
    Schema,
    StateStore,
    TerraformError,
    cty,
)
from plugwire.grpc.terraform.state_store import MAX_CHUNK_SIZE

__all__ = ["DirectoryStore", "main", "provider"]

_STATE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
STATE_SUFFIX = ".tfstate"
LOCK_SUFFIX = ".tflock"


class DirectoryStore(StateStore):
    """``fsstate_dir``: states as files in ``path``."""

    type_name = "fsstate_dir"
    schema = Schema(
        description="Terraform states as files in a directory, locked with lock files.",
        attributes={
            "path": Attribute(
                cty.String, required=True, description="Directory of the state files."
            ),
            "chunk_size": Attribute(
                cty.Number,
                optional=True,
                validators=[Between(1, MAX_CHUNK_SIZE)],
                description="State chunk size in bytes (default: Terraform's, 8 MiB).",
            ),
        },
    )

    def __init__(self) -> None:
        self.root: Path | None = None

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        root = Path(config["path"])
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise TerraformError(
                "Cannot use the state directory",
                f"{root}: {exc.strerror or exc}",
                cty.AttributePath().attr("path"),
            ) from None
        self.root = root
        if config.get("chunk_size") is not None:
            self.chunk_size = int(config["chunk_size"])

    def _file(self, state_id: str, suffix: str) -> Path:
        if self.root is None:
            raise TerraformError("State store not configured", "fsstate_dir has no path yet")
        if not _STATE_ID.match(state_id):
            raise TerraformError(
                "Invalid state id",
                f"state id {state_id!r}: expected letters, digits, '_', '-' and '.' (not first)",
            )
        return self.root / f"{state_id}{suffix}"

    async def read(self, state_id: str, ctx: Context) -> bytes | None:
        try:
            return self._file(state_id, STATE_SUFFIX).read_bytes()
        except FileNotFoundError:
            return None

    async def write(self, state_id: str, data: bytes, ctx: Context) -> None:
        path = self._file(state_id, STATE_SUFFIX)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    async def states(self, ctx: Context) -> list[str]:
        assert self.root is not None, "configured before use"
        return sorted(p.name[: -len(STATE_SUFFIX)] for p in self.root.glob(f"*{STATE_SUFFIX}"))

    async def delete(self, state_id: str, ctx: Context) -> None:
        lock = self._file(state_id, LOCK_SUFFIX)
        if lock.exists():
            raise LockHeld(state_id, LockInfo.from_json(lock.read_bytes()))
        self._file(state_id, STATE_SUFFIX).unlink(missing_ok=True)

    async def lock(self, state_id: str, info: LockInfo, ctx: Context) -> str:
        path = self._file(state_id, LOCK_SUFFIX)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise LockHeld(state_id, self._held(path) or LockInfo(id="?")) from None
        with os.fdopen(fd, "wb") as f:
            f.write(info.to_json())
        return info.id

    async def unlock(self, state_id: str, lock_id: str, ctx: Context) -> None:
        path = self._file(state_id, LOCK_SUFFIX)
        held = self._held(path)
        if held is None or held.id != lock_id:
            raise LockMismatch(state_id, lock_id, held)
        path.unlink(missing_ok=True)

    @staticmethod
    def _held(path: Path) -> LockInfo | None:
        try:
            return LockInfo.from_json(path.read_bytes())
        except FileNotFoundError:
            return None


def provider() -> Provider:
    return Provider(
        "fsstate",
        state_stores=[DirectoryStore()],
        schema=Schema(description="plugwire's example state-store provider."),
        version="0.1.0",
    )


def main() -> NoReturn:
    """Serve the ``fsstate`` provider."""
    from plugwire.grpc.terraform import serve

    serve(provider(), address="registry.terraform.io/plugwire/fsstate")
