"""One NRI connection: a mux, a ttrpc server on one conn and a client on the other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ._ttrpc import Handler, RpcClient, RpcServer
from .mux import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Multiplexer


class Session:
    """The two ttrpc endpoints of one NRI connection; ``closed`` fires when it ends."""

    def __init__(self, mux: Multiplexer, client: RpcClient, tg: anyio.abc.TaskGroup) -> None:
        self.mux = mux
        self.client = client
        self._tg = tg
        self.closed = anyio.Event()

    async def aclose(self) -> None:
        await self.mux.aclose()


@asynccontextmanager
async def open_session(
    trunk: anyio.abc.ByteStream,
    handlers: Mapping[tuple[str, str], Handler],
    *,
    plugin_side: bool,
    peer: str | None = None,
) -> AsyncIterator[Session]:
    """Run an NRI connection over ``trunk`` for the duration of the block.

    The plugin side serves on conn 1 and calls on conn 2; the runtime side the
    opposite. Leaving the block closes the connection.
    """
    async with Multiplexer(trunk, peer=peer) as mux:
        serve_id, call_id = (
            (PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN)
            if plugin_side
            else (RUNTIME_SERVICE_CONN, PLUGIN_SERVICE_CONN)
        )
        server = RpcServer(mux.open(serve_id), handlers, peer=peer)
        client = RpcClient(mux.open(call_id), peer=peer)
        async with anyio.create_task_group() as tg:
            session = Session(mux, client, tg)

            async def watch() -> None:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(server.serve)
                    await client.run()
                    inner.cancel_scope.cancel()
                session.closed.set()
                await mux.aclose()

            tg.start_soon(watch)
            try:
                yield session
            finally:
                await mux.aclose()
                tg.cancel_scope.cancel()
