"""Servers of ``plugwire bench ttrpc`` (``python -m`` it; not a public API).

``raw SOCKET``: asyncio unix-socket echo of length-prefixed frames (the floor);
``ttrpc SOCKET``: the plugwire ttrpc server of the upstream integration/streaming
service. Each prints ``READY`` once it listens.
"""

from __future__ import annotations

import asyncio
import struct
import sys


async def _serve_raw(path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                writer.write(head + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_unix_server(handle, path)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


async def _serve_ttrpc(path: str) -> None:
    import anyio

    from plugwire.ttrpc import Server
    from plugwire.ttrpc.example import SERVICE, StreamingServicer

    server = Server()
    server.add_servicer(StreamingServicer(), SERVICE)
    async with server.listen(f"unix:{path}"):
        print("READY", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    kind, sock = sys.argv[1], sys.argv[2]
    asyncio.run(_serve_raw(sock) if kind == "raw" else _serve_ttrpc(sock))
