"""One NRI connection: a mux, a ttrpc server on one conn and a client on the other."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.abc
from google.protobuf.message import DecodeError, Message

from plugwire.ttrpc import Client, MethodHandler, Server

from .api import NriError
from .mux import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Multiplexer

__all__ = ["Handler", "Session", "open_session", "sole_error"]

#: A unary method: request payload in, response payload out. Raise
#: :class:`~plugwire.core.errors.RemoteError` to answer with a specific status code.
Handler = Callable[[bytes], Awaitable[bytes]]

M = TypeVar("M", bound=Message)


def sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error inside nested task-group ``group`` (cancellations aside),
    so that callers see e.g. a :class:`PluginTimeoutError` rather than an
    ``ExceptionGroup``; ``group`` itself when there are several."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif not isinstance(exc, anyio.get_cancelled_exc_class()):
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else group


class Session:
    """The two ttrpc endpoints of one NRI connection; ``closed`` fires when it ends."""

    def __init__(self, mux: Multiplexer, client: Client) -> None:
        self.mux = mux
        self.client = client
        self.closed = anyio.Event()

    async def call(
        self,
        service: str,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None = None,
    ) -> M:
        """Call ``service/method`` on the peer; its reply parsed as ``response_type``.

        ``timeout`` in seconds (``None`` or infinite: no deadline). Raises what
        :meth:`plugwire.ttrpc.Client.call` raises (``TimeoutError``,
        :class:`~plugwire.core.errors.RemoteError`,
        :class:`~plugwire.core.errors.ConnectionClosedError`...) and
        :class:`~plugwire.ttrpc.nri.NriError` for a reply that does not parse.
        """
        data = await self.client.call(
            service,
            method,
            request.SerializeToString(),
            timeout=None if timeout is None or math.isinf(timeout) else timeout,
        )
        try:
            return response_type.FromString(data)
        except DecodeError as exc:
            raise NriError(
                f"malformed {method} reply", peer=self.client.peer, step=method, seen=str(exc)
            ) from exc

    async def aclose(self) -> None:
        await self.mux.aclose()


def _server(handlers: Mapping[tuple[str, str], Handler]) -> Server:
    services: dict[str, dict[str, MethodHandler]] = defaultdict(dict)
    for (service, method), handler in handlers.items():

        async def func(request: bytes, _context: Any, handler: Handler = handler) -> bytes:
            return await handler(request)

        services[service][method] = MethodHandler(func=func)
    server = Server()
    for service, methods in services.items():
        server.register(service, methods)
    return server


@asynccontextmanager
async def open_session(
    trunk: anyio.abc.ByteStream,
    handlers: Mapping[tuple[str, str], Handler],
    *,
    plugin_side: bool,
    peer: str = "NRI peer",
    stop: anyio.Event | None = None,
) -> AsyncIterator[Session]:
    """Run an NRI connection over ``trunk`` for the duration of the block.

    The plugin side serves on conn 1 (Plugin service) and calls on conn 2 (Runtime
    service); the runtime side the opposite, both with :mod:`plugwire.ttrpc`.
    ``session.closed`` is set when the connection ends; leaving the block, or
    ``stop`` being set, closes it.
    """
    async with Multiplexer(trunk, peer=peer) as mux:
        serve_id, call_id = (
            (PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN)
            if plugin_side
            else (RUNTIME_SERVICE_CONN, PLUGIN_SERVICE_CONN)
        )
        server = _server(handlers)
        serve_conn = mux.open(serve_id)
        client = Client.from_stream(mux.open(call_id), peer=peer)
        session = Session(mux, client)
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                try:
                    await server.serve_stream(serve_conn, peer=peer)
                finally:
                    session.closed.set()
                    await mux.aclose()

            tg.start_soon(watch)
            if stop is not None:

                async def stopper() -> None:
                    await stop.wait()
                    await mux.aclose()

                tg.start_soon(stopper)
            try:
                yield session
            finally:
                await mux.aclose()
                await client.aclose()
                tg.cancel_scope.cancel()
