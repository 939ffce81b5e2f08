"""The {{ cookiecutter.service_name }} ttrpc service, and the executable that serves it.

``{{ cookiecutter.project_slug }}-server ADDRESS`` listens on ``ADDRESS``
(``unix:/run/x.sock`` or ``tcp:127.0.0.1:0``), prints ``READY <address>`` once it
accepts connections and stops cleanly (exit status 0) on SIGTERM or SIGINT.
``PLUGWIRE_ANYIO_BACKEND=trio`` runs it on trio instead of asyncio.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator

import anyio
from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.ttrpc import Server, ServerContext

from .proto import SERVICE, CountRequest, GreetReply, GreetRequest, Tick

DEFAULT_GREETING = "{{ cookiecutter.default_greeting }}"
MAX_COUNT = 1000


class Servicer:
    """The servicer (grpc.aio's convention: unary methods return, streams yield)."""

    def __init__(self, greeting: str = DEFAULT_GREETING) -> None:
        self.greeting = greeting

    async def Greet(self, request: GreetRequest, context: ServerContext) -> GreetReply:
        if not request.name:
            raise RemoteError("name is required", code=StatusCode.INVALID_ARGUMENT)
        greeting = context.metadata_value("greeting") or self.greeting
        return GreetReply(message=f"{greeting}, {request.name}!")

    async def Countdown(self, request: CountRequest, context: ServerContext) -> AsyncIterator[Tick]:
        if not 0 <= request.start <= MAX_COUNT:
            raise RemoteError(f"start must be in 0..{MAX_COUNT}", code=StatusCode.OUT_OF_RANGE)
        for value in range(request.start, 0, -1):
            yield Tick(value=value)


async def serve(address: str) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = Server()
    server.add_servicer(Servicer(), SERVICE)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with server.listen(address, grace=5) as bound:
            print(f"READY {bound}", flush=True)
            async for _ in signals:
                break


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: {{ cookiecutter.project_slug }}-server ADDRESS")
    anyio.run(serve, sys.argv[1], backend=os.environ.get("PLUGWIRE_ANYIO_BACKEND", "asyncio"))


if __name__ == "__main__":
    main()
