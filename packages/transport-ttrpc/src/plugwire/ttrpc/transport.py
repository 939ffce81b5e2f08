"""``TtrpcTransport``: ttrpc on the core :class:`~plugwire.core.transport.Transport` interface.

Handlers are byte-level (``(payload, metadata) -> reply``) and keyed by full method
name ``/pkg.Service/Method``; each becomes a unary ttrpc method.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from plugwire.core.transport import Address, Channel, Transport, UnaryHandler

from .client import Client, split_method
from .server import MethodHandler, Server, ServerContext

__all__ = ["TtrpcTransport"]


def _wrap(handler: UnaryHandler) -> MethodHandler:
    async def func(payload: bytes, context: ServerContext) -> bytes:
        md = {k: vs[0] for k, vs in context.metadata.items() if vs}
        return await handler(payload, md)

    return MethodHandler(func=func)


class TtrpcTransport(Transport):
    """The ``ttrpc`` transport (entry point ``plugwire.transports:ttrpc``)."""

    name: ClassVar[str] = "ttrpc"

    @contextlib.asynccontextmanager
    async def _serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> AsyncIterator[Address]:
        server = Server()
        services: dict[str, dict[str, MethodHandler]] = {}
        for full, handler in handlers.items():
            service, method = split_method(full)
            services.setdefault(service, {})[method] = _wrap(handler)
        for service, methods in services.items():
            server.register(service, methods)
        async with server.listen(address) as bound:
            yield bound

    def serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    async def connect(self, address: Address) -> Channel:
        return await Client.connect(address)
