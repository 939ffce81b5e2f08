"""The bundled example: containerd/ttrpc's ``integration/streaming`` service.

:class:`StreamingServicer` behaves like the upstream Go test service (so Go and
Python peers can be swapped in the interop tests), and this module is a runnable
plugin::

    python -m plugwire.ttrpc.example serve unix:/tmp/echo.sock   # prints "READY <address>"
    python -m plugwire.ttrpc.example call unix:/tmp/echo.sock    # runs every method once
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator

import anyio
from google.protobuf import empty_pb2

from plugwire.core.errors import PlugwireError, RemoteError
from plugwire.core.status import StatusCode

from ._generated import ttrpc_streaming_pb2 as pb
from .client import Client
from .server import Server, ServerContext
from .service import ServiceClient

__all__ = ["SERVICE", "StreamingServicer", "divide_sum", "exercise", "pb"]

#: The ``ttrpc.integration.streaming.Streaming`` service descriptor.
SERVICE = pb.DESCRIPTOR.services_by_name["Streaming"]

_NULL_MSG = "non-empty empty"


def divide_sum(total: int, num: int) -> list[int]:
    """``num`` addends summing to ``total`` (first and last are 0, as upstream)."""
    rng = random.Random(14)
    parts = [0] * num
    acc = 0
    for i in range(1, num - 2):
        add = rng.randrange(1000) - 500
        parts[i] = add
        acc += add
    parts[num - 2] = total - acc
    return parts


class StreamingServicer:
    """The upstream streaming test service, in the grpc.aio servicer convention.

    ``Echo`` also obeys two request metadata keys, for error and deadline demos:
    ``sleep-ms`` (wait that long first) and ``fail-code`` (fail with that status
    code and the message in ``fail-message``).
    """

    async def Echo(self, request: pb.EchoPayload, context: ServerContext) -> pb.EchoPayload:
        if context.metadata:
            sleep_ms = context.metadata_value("sleep-ms")
            if sleep_ms:
                await anyio.sleep(int(sleep_ms) / 1000)
            code = context.metadata_value("fail-code")
            if code:
                message = context.metadata_value("fail-message") or "failed"
                raise RemoteError(message, code=int(code))
        return pb.EchoPayload(seq=request.seq + 1, msg=request.msg)

    async def EchoStream(
        self, request_iterator: AsyncIterator[pb.EchoPayload], context: ServerContext
    ) -> AsyncIterator[pb.EchoPayload]:
        async for e in request_iterator:
            yield pb.EchoPayload(seq=e.seq + 1, msg=e.msg)

    async def SumStream(
        self, request_iterator: AsyncIterator[pb.Part], context: ServerContext
    ) -> pb.Sum:
        total = num = 0
        async for part in request_iterator:
            total += part.add
            num += 1
        return pb.Sum(sum=total, num=num)

    async def DivideStream(self, request: pb.Sum, context: ServerContext) -> AsyncIterator[pb.Part]:
        for add in divide_sum(request.sum, request.num):
            yield pb.Part(add=add)

    async def EchoNull(
        self, request_iterator: AsyncIterator[pb.EchoPayload], context: ServerContext
    ) -> empty_pb2.Empty:
        seq = 0
        async for e in request_iterator:
            if e.seq != seq:
                raise RemoteError(
                    f"unexpected sequence {e.seq}, expected {seq}", code=StatusCode.UNKNOWN
                )
            if e.msg != _NULL_MSG:
                raise RemoteError(
                    f"unexpected message {e.msg!r}, expected {_NULL_MSG!r}", code=StatusCode.UNKNOWN
                )
            seq += 1
        return empty_pb2.Empty()

    async def EchoNullStream(
        self, request_iterator: AsyncIterator[pb.EchoPayload], context: ServerContext
    ) -> AsyncIterator[empty_pb2.Empty]:
        seq = 0
        async for e in request_iterator:
            if e.seq != seq or e.msg != _NULL_MSG:
                raise RemoteError(f"unexpected payload {e.seq} {e.msg!r}", code=StatusCode.UNKNOWN)
            seq += 1
            for _ in range(10):
                yield empty_pb2.Empty()

    async def EmptyPayloadStream(
        self, request: empty_pb2.Empty, context: ServerContext
    ) -> AsyncIterator[pb.EchoPayload]:
        yield pb.EchoPayload(seq=1)
        yield pb.EchoPayload(seq=2)


async def exercise(client: Client) -> list[tuple[str, bool, str]]:
    """Call every Streaming method once; (method, ok, detail) per method."""
    stub = ServiceClient(client, SERVICE)
    results: list[tuple[str, bool, str]] = []

    reply = await stub.Echo(pb.EchoPayload(seq=1, msg="Echo Me"))
    results.append(("Echo", reply.seq == 2 and reply.msg == "Echo Me", f"seq {reply.seq}"))

    stream = await stub.EchoStream()
    ok = True
    for i in range(0, 20, 2):
        await stream.send(pb.EchoPayload(seq=i, msg=f"{i}: Echo in a stream"))
        got = await stream.recv()
        ok = ok and got is not None and got.seq == i + 1
    await stream.close_send()
    ok = ok and await stream.recv() is None
    results.append(("EchoStream", ok, "10 round trips"))

    parts = [pb.Part(add=i) for i in range(-99, 101)]
    total = await stub.SumStream(parts)
    results.append(
        ("SumStream", total.sum == 100 and total.num == 200, f"sum {total.sum} of {total.num}")
    )

    got_parts = [p.add async for p in await stub.DivideStream(pb.Sum(sum=392, num=30))]
    results.append(
        ("DivideStream", sum(got_parts) == 392 and len(got_parts) == 30, f"{len(got_parts)} parts")
    )

    await stub.EchoNull([pb.EchoPayload(seq=i, msg=_NULL_MSG) for i in range(10)])
    results.append(("EchoNull", True, "10 sent"))

    nulls = await stub.EchoNullStream()
    for i in range(5):
        await nulls.send(pb.EchoPayload(seq=i, msg=_NULL_MSG))
    await nulls.close_send()
    count = len([x async for x in nulls])
    results.append(("EchoNullStream", count == 50, f"{count} empties"))

    seqs = [p.seq async for p in await stub.EmptyPayloadStream(empty_pb2.Empty())]
    results.append(("EmptyPayloadStream", seqs == [1, 2], f"seqs {seqs}"))
    return results


async def _serve(address: str) -> None:
    server = Server()
    server.add_servicer(StreamingServicer(), SERVICE)
    async with server.listen(address) as bound:
        print(f"READY {bound}", flush=True)
        await anyio.sleep_forever()


async def _call(address: str) -> int:
    async with await Client.connect(address) as client:
        results = await exercise(client)
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    prog = "python -m plugwire.ttrpc.example"
    if len(args) != 2 or args[0] not in ("serve", "call"):
        print(f"usage: {prog} serve|call ADDRESS", file=sys.stderr)
        if not args:
            problem = "missing the command and ADDRESS"
        elif args[0] not in ("serve", "call"):
            problem = f"unknown command {args[0]!r} (serve or call)"
        else:
            problem = f"{args[0]} takes one ADDRESS, got {len(args) - 1}"
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    try:
        if args[0] == "serve":
            anyio.run(_serve, args[1])
            return 0
        return anyio.run(_call, args[1])
    except KeyboardInterrupt:
        return 0 if args[0] == "serve" else 130
    except PlugwireError as exc:
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
