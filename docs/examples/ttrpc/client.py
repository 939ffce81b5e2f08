"""A ttrpc client calling the example server (or any containerd/ttrpc server of
the upstream integration/streaming service).

Run:  python docs/examples/ttrpc/client.py /tmp/echo.sock
"""

from __future__ import annotations

import sys

import anyio

from plugwire.core.errors import RemoteError
from plugwire.ttrpc import Client, ServiceClient
from plugwire.ttrpc.example import SERVICE, pb


async def main(path: str) -> None:
    async with await Client.connect(f"unix:{path}") as client:
        stub = ServiceClient(client, SERVICE)

        # unary, with metadata and a deadline (sent as timeout_nano)
        reply = await stub.Echo(pb.EchoPayload(seq=1, msg="hi"), timeout=5, metadata={"who": "me"})
        print("Echo ->", reply.seq, reply.msg)

        # bidirectional: send and receive on one stream
        stream = await stub.EchoStream()
        for i in range(3):
            await stream.send(pb.EchoPayload(seq=i, msg="ping"))
            print("EchoStream ->", (await stream.recv()).seq)
        await stream.close_send()

        # client streaming: any (async) iterable of requests
        total = await stub.SumStream(pb.Part(add=i) for i in range(10))
        print("SumStream ->", total.sum, total.num)

        # server streaming
        parts = [p.add async for p in await stub.DivideStream(pb.Sum(sum=10, num=4))]
        print("DivideStream ->", parts)

        # errors carry the gRPC status code
        try:
            await stub.EchoNull([])
        except RemoteError as exc:
            print("EchoNull ->", exc)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "/tmp/plugwire-ttrpc-example.sock")
