"""A ttrpc server in a dozen lines: the containerd/ttrpc streaming test service.

Run:  python docs/examples/ttrpc/server.py /tmp/echo.sock   (then client.py)

The servicer follows the grpc.aio convention (unary ``async def``, streaming as
async generators); its messages come from an ordinary .proto compiled with
``protoc --python_out`` (here the one bundled in plugwire.ttrpc.example).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import anyio

from plugwire.ttrpc import Server, ServerContext
from plugwire.ttrpc.example import SERVICE, pb


class Streaming:
    async def Echo(self, request: pb.EchoPayload, context: ServerContext) -> pb.EchoPayload:
        # metadata and the caller's deadline are on the context
        print("Echo", request.msg, dict(context.invocation_metadata()), context.time_remaining())
        return pb.EchoPayload(seq=request.seq + 1, msg=request.msg)

    async def EchoStream(
        self, requests: AsyncIterator[pb.EchoPayload], context: ServerContext
    ) -> AsyncIterator[pb.EchoPayload]:
        async for e in requests:
            yield pb.EchoPayload(seq=e.seq + 1, msg=e.msg)

    async def SumStream(self, parts: AsyncIterator[pb.Part], context: ServerContext) -> pb.Sum:
        total = pb.Sum()
        async for part in parts:
            total.sum += part.add
            total.num += 1
        return total

    async def DivideStream(self, request: pb.Sum, context: ServerContext) -> AsyncIterator[pb.Part]:
        for _ in range(request.num - 1):
            yield pb.Part(add=1)
        yield pb.Part(add=request.sum - (request.num - 1))

    # EchoNull, EchoNullStream, EmptyPayloadStream are not implemented here: UNIMPLEMENTED


async def main(path: str) -> None:
    server = Server()
    server.add_servicer(Streaming(), SERVICE)
    async with server.listen(f"unix:{path}") as bound:
        print(f"READY {bound}", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "/tmp/plugwire-ttrpc-example.sock")
