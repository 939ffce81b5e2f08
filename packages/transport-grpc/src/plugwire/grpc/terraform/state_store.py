"""State stores (protocol 6): a provider as Terraform's state backend.

A :class:`StateStore` is what ``terraform { state_store "<type>" { provider "<name>"
{} ... } }`` configures: Terraform keeps its state files ("states", one per
workspace, ``default`` first) in it instead of a backend. The framework does the
protocol (``ValidateStateStoreConfig``, ``ConfigureStateStore`` and its chunk-size
negotiation, the chunked ``ReadStateBytes``/``WriteStateBytes`` streams, ``LockState``/
``UnlockState``, ``GetStates``, ``DeleteState``); a store sees whole state files as
``bytes``::

    class Files(StateStore):
        type_name = "example_files"
        schema = Schema(attributes={"path": Attribute(cty.String, required=True)})

        async def configure(self, config, ctx): self.root = Path(config["path"])
        async def read(self, state_id, ctx): ...      # bytes, or None: no such state
        async def write(self, state_id, data, ctx): ...
        async def lock(self, state_id, info, ctx): ...  # info.id, or raise LockHeld
        async def unlock(self, state_id, lock_id, ctx): ...
        async def states(self, ctx): ...              # the state ids
        async def delete(self, state_id, ctx): ...

State stores are an experiment in Terraform (v1.16: only builds with experiments
allowed parse ``state_store``); the protocol is tfplugin6.11.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import socket
import uuid
from typing import Any, ClassVar

import attrs

from .context import Context
from .diagnostics import TerraformError
from .schema import Schema

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_MESSAGE_SIZE",
    "LockHeld",
    "LockInfo",
    "LockMismatch",
    "StateStore",
]

#: The chunk size Terraform suggests in ``ConfigureStateStore`` (8 MiB).
DEFAULT_CHUNK_SIZE = 8 << 20
#: The largest chunk size Terraform accepts from a provider (128 MiB).
MAX_CHUNK_SIZE = 128 << 20
#: Terraform's (and terraform-plugin-go's) gRPC message limit for the state streams:
#: 256 MiB, room for a largest chunk plus diagnostics.
MAX_MESSAGE_SIZE = 256 << 20


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    host = socket.gethostname()
    return f"{user}@{host}" if user and host else user


@attrs.frozen
class LockInfo:
    """One lock on a state, as a store keeps it: ``id`` (what ``LockState`` returns and
    ``UnlockState``/``terraform force-unlock`` name), the ``operation`` Terraform runs
    (``OperationTypePlan``, ...), ``who`` holds it (``user@host``), when it was
    ``created``. :meth:`new` makes one with a fresh UUID."""

    id: str
    operation: str = ""
    who: str = ""
    created: str = ""

    @classmethod
    def new(cls, operation: str = "") -> LockInfo:
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return cls(id=str(uuid.uuid4()), operation=operation, who=_who(), created=now)

    def to_json(self) -> bytes:
        return json.dumps(attrs.asdict(self), indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> LockInfo:
        """A lock written by :meth:`to_json` (unreadable data: a lock with id ``"?"``
        and the data as ``who``, so the holder is still named)."""
        try:
            raw = json.loads(data)
            return cls(**{f: str(raw.get(f, "")) for f in ("id", "operation", "who", "created")})
        except (ValueError, TypeError, AttributeError):
            text = data.decode(errors="replace") if isinstance(data, bytes) else data
            return cls(id="?", who=text[:200])

    def __str__(self) -> str:
        return (
            f"Lock Info:\n  ID:        {self.id}\n  Operation: {self.operation}\n"
            f"  Who:       {self.who}\n  Created:   {self.created}"
        )


class LockHeld(TerraformError):
    """``LockState`` of a state another client holds: Terraform shows this diagnostic
    (naming the lock and its holder) and, for ``-lock-timeout``, retries."""

    def __init__(self, state_id: str, held: LockInfo) -> None:
        super().__init__(
            "Workspace Already Locked",
            f"{state_id!r} workspace has a lock held by another client "
            f"(lock ID {held.id!r}).\n\n{held}",
        )
        self.state_id = state_id
        self.held = held


class LockMismatch(TerraformError):
    """``UnlockState`` with a lock ID that is not the one held (or of a state that is
    not locked: ``held`` None)."""

    def __init__(self, state_id: str, lock_id: str, held: LockInfo | None) -> None:
        if held is None:
            detail = f"{state_id!r} workspace is not locked (unlock asked for lock ID {lock_id!r})"
        else:
            detail = (
                f"{state_id!r} workspace is locked with lock ID {held.id!r}, "
                f"not {lock_id!r}.\n\n{held}"
            )
        super().__init__("Unable to unlock workspace", detail)
        self.state_id = state_id
        self.lock_id = lock_id
        self.held = held


class StateStore:
    """Base class of a state store type.

    Set ``type_name`` (``<provider>_<name>``) and ``schema`` (the ``state_store``
    block's attributes, next to its ``provider`` block); override the async methods.
    ``chunk_size``: the chunk size the store wants (None: take Terraform's
    suggestion, 8 MiB); at most :data:`MAX_CHUNK_SIZE`. :meth:`configure` may set it.
    """

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()
    chunk_size: int | None = None

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """``ValidateStateStoreConfig``: checks beyond the schema's validators."""

    async def configure(self, config: dict[str, Any], ctx: Context) -> None:
        """``ConfigureStateStore``: set up from the block (the provider is configured
        already: ``ctx.provider``)."""

    async def read(self, state_id: str, ctx: Context) -> bytes | None:
        """The state file ``state_id``; None (or empty) when there is none yet."""
        raise TerraformError(f"{self.type_name} cannot read states", "read is not implemented")

    async def write(self, state_id: str, data: bytes, ctx: Context) -> None:
        """Store ``data`` (a whole state file) as ``state_id``."""
        raise TerraformError(f"{self.type_name} cannot write states", "write is not implemented")

    async def lock(self, state_id: str, info: LockInfo, ctx: Context) -> str:
        """Lock ``state_id`` for ``info.operation``: return the lock ID (``info.id``);
        raise :class:`LockHeld` when another client holds it. The default refuses
        (``terraform -lock=false`` runs without locking)."""
        raise TerraformError(
            f"{self.type_name} does not support locking",
            "lock is not implemented; run terraform with -lock=false",
        )

    async def unlock(self, state_id: str, lock_id: str, ctx: Context) -> None:
        """Release the lock ``lock_id`` (also ``terraform force-unlock``); raise
        :class:`LockMismatch` when that is not the lock held."""
        raise TerraformError(
            f"{self.type_name} does not support locking", "unlock is not implemented"
        )

    async def states(self, ctx: Context) -> list[str]:
        """``GetStates``: the ids of the stored states (workspaces)."""
        raise TerraformError(f"{self.type_name} cannot list states", "states is not implemented")

    async def delete(self, state_id: str, ctx: Context) -> None:
        """``DeleteState`` (``terraform workspace delete``)."""
        raise TerraformError(f"{self.type_name} cannot delete states", "delete is not implemented")
