"""The state-store RPCs of protocol 6 (tfplugin6.11), on top of :class:`ProviderCore`.

``_server6`` binds these: ``ValidateStateStoreConfig``, ``ConfigureStateStore`` (the
chunk size is negotiated here: Terraform suggests one, the store may choose another
up to :data:`~.state_store.MAX_CHUNK_SIZE`, Terraform then sends and expects chunks
of exactly that size but the last), the server-streaming ``ReadStateBytes``, the
client-streaming ``WriteStateBytes``, ``LockState``/``UnlockState``, ``GetStates`` and
``DeleteState``. Chunks are checked as they arrive: each must continue where the
previous ended (``range.start`` = bytes received so far, inclusive ``range.end``),
agree on ``total_length``, and have the negotiated size; anything else is an error
diagnostic naming the state, never a crash. After such an error the rest of the
stream is drained (and dropped) so Terraform, which sends every chunk before it
reads the answer, gets the diagnostic rather than a broken stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ._core import ProviderCore, _Failed
from .context import Context
from .state_store import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, LockInfo, StateStore

__all__ = ["StateCore"]


class StateCore:
    """Serves the :class:`StateStore` instances of ``core.provider``."""

    def __init__(self, core: ProviderCore) -> None:
        self.core = core
        self.pb = core.pb
        #: type name -> the chunk size agreed in ConfigureStateStore.
        self.chunk_sizes: dict[str, int] = {}

    def _store(self, type_name: str, ctx: Context) -> StateStore:
        store: StateStore = self.core._lookup(
            self.core.provider.state_stores, "state store", type_name, ctx
        )
        return store

    def _configured(self, type_name: str, ctx: Context) -> tuple[StateStore, int]:
        store = self._store(type_name, ctx)
        size = self.chunk_sizes.get(type_name)
        if size is None:
            ctx.diagnostics.error(
                "State store not configured",
                f"state store {type_name!r} was used before ConfigureStateStore",
            )
            raise _Failed
        return store, size

    def _response(self, response_type: Any, ctx: Context, **fields: Any) -> Any:
        return response_type(diagnostics=self.core._diags(ctx), **fields)

    # -- configuration ---------------------------------------------------------------

    async def validate_config(self, request: Any, response_type: Any) -> Any:
        ctx = self.core._ctx(request.type_name)
        try:
            store = self._store(request.type_name, ctx)
            await self.core._validate(
                store.schema, request.config, ctx, "state store configuration", store.validate
            )
        except _Failed:
            pass
        return self._response(response_type, ctx)

    async def configure(self, request: Any, response_type: Any) -> Any:
        name = request.type_name
        ctx = self.core._ctx(name)
        response = response_type()
        try:
            store = self._store(name, ctx)
            config = self.core._decode(
                request.config, store.schema, ctx, "state store configuration"
            )
            await self.core._run(
                ctx, f"configuring state store {name}", lambda: store.configure(config or {}, ctx)
            )
            suggested = request.capabilities.chunk_size or DEFAULT_CHUNK_SIZE
            chosen = store.chunk_size or min(suggested, MAX_CHUNK_SIZE)
            if not isinstance(chosen, int) or not 0 < chosen <= MAX_CHUNK_SIZE:
                ctx.diagnostics.error(
                    "Invalid state store chunk size",
                    f"state store {name!r} chose a chunk size of {chosen!r} bytes; Terraform "
                    f"accepts 1 to {MAX_CHUNK_SIZE} bytes (it suggested {suggested})",
                )
                raise _Failed
            self.chunk_sizes[name] = chosen
            response.capabilities.chunk_size = chosen
        except _Failed:
            pass
        response.diagnostics.extend(self.core._diags(ctx))
        return response

    # -- state bytes -----------------------------------------------------------------

    async def read(self, request: Any) -> AsyncIterator[Any]:
        """``ReadStateBytes``: the state in chunks of the agreed size (none when there
        is no such state yet); diagnostics ride on the first chunk."""
        pb = self.pb
        name, state_id = request.type_name, request.state_id
        ctx = self.core._ctx(name)
        data: Any = None
        size = 0
        try:
            store, size = self._configured(name, ctx)
            data = await self.core._run(
                ctx, f"reading state {state_id!r} of {name}", lambda: store.read(state_id, ctx)
            )
            if data is not None and not isinstance(data, bytes | bytearray | memoryview):
                ctx.diagnostics.error(
                    "Invalid state returned by the provider",
                    f"state store {name!r} read of {state_id!r} returned a "
                    f"{type(data).__name__}, expected bytes or None",
                )
                raise _Failed
        except _Failed:
            data = None
        diags = self.core._diags(ctx)
        if ctx.diagnostics.has_errors or not data:
            if diags:  # an error, or warnings about a state that does not exist
                yield pb.ReadStateBytes.ResponseChunk(
                    diagnostics=diags, range=pb.StateByteRange(start=0, end=-1)
                )
            return
        view = memoryview(data)
        total = len(view)
        for start in range(0, total, size):
            piece = bytes(view[start : start + size])
            yield pb.ReadStateBytes.ResponseChunk(
                bytes=piece,
                total_length=total,
                range=pb.StateByteRange(start=start, end=start + len(piece) - 1),
                diagnostics=diags if start == 0 else (),
            )

    async def write(self, chunks: AsyncIterator[Any], response_type: Any) -> Any:
        """``WriteStateBytes``: gather the chunks, checking each, then store them."""
        ctx = self.core._ctx()
        buffer = bytearray()
        name = state_id = ""
        store: StateStore | None = None
        size = total = 0
        count = 0
        failed = False
        async for chunk in chunks:
            count += 1
            if failed:
                continue  # drain: Terraform reads the answer after its last chunk
            try:
                if count == 1:
                    if not chunk.HasField("meta"):
                        ctx.diagnostics.error(
                            "Invalid state chunk",
                            "the first WriteStateBytes chunk carries no meta "
                            "(state store type and state id)",
                        )
                        raise _Failed
                    name, state_id = chunk.meta.type_name, chunk.meta.state_id
                    ctx.type_name = name
                    store, size = self._configured(name, ctx)
                    total = chunk.total_length
                    if total < 0:
                        ctx.diagnostics.error(
                            "Invalid state chunk",
                            f"state {state_id!r}: negative total_length {total}",
                        )
                        raise _Failed
                self._check_chunk(chunk, count, name, state_id, len(buffer), total, size, ctx)
                buffer += chunk.bytes
            except _Failed:
                failed = True
        try:
            if failed:
                raise _Failed
            if count == 0 or store is None:
                ctx.diagnostics.error(
                    "No state data received",
                    "WriteStateBytes ended before its first chunk: nothing to store",
                )
                raise _Failed
            if len(buffer) != total:
                ctx.diagnostics.error(
                    "Incomplete state",
                    f"state {state_id!r} of {name}: the stream ended after {len(buffer)} "
                    f"of {total} bytes ({count} chunk(s)); nothing was stored",
                )
                raise _Failed
            target = store
            data = bytes(buffer)
            await self.core._run(
                ctx,
                f"writing state {state_id!r} of {name}",
                lambda: target.write(state_id, data, ctx),
            )
        except _Failed:
            pass
        return self._response(response_type, ctx)

    def _check_chunk(
        self,
        chunk: Any,
        index: int,
        name: str,
        state_id: str,
        received: int,
        total: int,
        size: int,
        ctx: Context,
    ) -> None:
        where = f"state {state_id!r} of {name}, chunk {index}"
        if index > 1 and chunk.HasField("meta"):
            meta = chunk.meta
            if (meta.type_name, meta.state_id) != (name, state_id):
                ctx.diagnostics.error(
                    "Invalid state chunk",
                    f"{where} names {meta.type_name}/{meta.state_id!r}: one WriteStateBytes "
                    "stream writes one state",
                )
                raise _Failed
        if chunk.total_length != total:
            ctx.diagnostics.error(
                "Invalid state chunk",
                f"{where}: total_length {chunk.total_length} differs from the first "
                f"chunk's {total}",
            )
            raise _Failed
        n = len(chunk.bytes)
        start, end = chunk.range.start, chunk.range.end
        if start != received or end != start + n - 1:
            ctx.diagnostics.error(
                "State chunk out of order",
                f"{where}: expected bytes {received}-{received + n - 1}, seen range "
                f"{start}-{end} ({n} bytes); chunks must arrive in order without gaps",
            )
            raise _Failed
        if received + n > total:
            ctx.diagnostics.error(
                "Invalid state chunk",
                f"{where}: bytes {start}-{end} run past the declared total of {total} bytes",
            )
            raise _Failed
        last = end >= total - 1
        if n > size or (not last and n != size):
            ctx.diagnostics.error(
                "Unexpected state chunk size",
                f"{where}: {n} bytes, the chunk size agreed in ConfigureStateStore is {size} "
                f"({'at most' if last else 'exactly'} that for {'the last' if last else 'every'}"
                f" chunk{'' if last else ' but the last'})",
            )
            raise _Failed

    # -- locks and states ------------------------------------------------------------

    async def lock(self, request: Any, response_type: Any) -> Any:
        name, state_id = request.type_name, request.state_id
        ctx = self.core._ctx(name)
        lock_id = ""
        try:
            store, _ = self._configured(name, ctx)
            info = LockInfo.new(request.operation)
            got = await self.core._run(
                ctx,
                f"locking state {state_id!r} of {name}",
                lambda: store.lock(state_id, info, ctx),
            )
            lock_id = str(got or "")
        except _Failed:
            lock_id = ""
        return self._response(response_type, ctx, lock_id=lock_id)

    async def unlock(self, request: Any, response_type: Any) -> Any:
        name, state_id, lock_id = request.type_name, request.state_id, request.lock_id
        ctx = self.core._ctx(name)
        try:
            store, _ = self._configured(name, ctx)
            await self.core._run(
                ctx,
                f"unlocking state {state_id!r} of {name}",
                lambda: store.unlock(state_id, lock_id, ctx),
            )
        except _Failed:
            pass
        return self._response(response_type, ctx)

    async def get_states(self, request: Any, response_type: Any) -> Any:
        name = request.type_name
        ctx = self.core._ctx(name)
        ids: list[str] = []
        try:
            store, _ = self._configured(name, ctx)
            found = await self.core._run(
                ctx, f"listing states of {name}", lambda: store.states(ctx)
            )
            ids = [str(s) for s in found]
        except _Failed:
            ids = []
        return self._response(response_type, ctx, state_ids=ids)

    async def delete(self, request: Any, response_type: Any) -> Any:
        name, state_id = request.type_name, request.state_id
        ctx = self.core._ctx(name)
        try:
            store, _ = self._configured(name, ctx)
            await self.core._run(
                ctx, f"deleting state {state_id!r} of {name}", lambda: store.delete(state_id, ctx)
            )
        except _Failed:
            pass
        return self._response(response_type, ctx)
