"""A plugin with streaming methods of every kind (raw bytes, no proto), for the
host's typed errors on streaming calls. Requests: ``fail`` aborts the call with a
status, ``crash`` kills the process (exit 4) in the middle of the stream, ``hang``
sends one reply and never ends."""

import asyncio
import os

import grpc

from plugwire.grpc.goplugin import GrpcBroker, GrpcPlugin, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE


async def count(request, context):
    # "<n>" -> n replies; "fail" -> 2 replies then INVALID_ARGUMENT; "crash" -> 1 then exit
    if request == b"fail":
        yield b"0"
        yield b"1"
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no counting to fail")
    if request == b"crash":
        yield b"0"
        os._exit(4)
    if request == b"hang":
        yield b"0"
        await asyncio.Event().wait()
    for i in range(int(request)):
        yield str(i).encode()


async def join(requests, context):
    parts = []
    async for request in requests:
        if request == b"fail":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "cannot join fail")
        if request == b"crash":
            os._exit(4)
        parts.append(request)
    return b"+".join(parts)


async def shout(requests, context):
    async for request in requests:
        if request == b"fail":
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "too loud")
        if request == b"crash":
            os._exit(4)
        yield request.upper()


class Plugin(GrpcPlugin):
    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "test.Streams",
                    {
                        "Count": grpc.unary_stream_rpc_method_handler(count),
                        "Join": grpc.stream_unary_rpc_method_handler(join),
                        "Shout": grpc.stream_stream_rpc_method_handler(shout),
                    },
                )
            ]
        )


serve(handshake=HANDSHAKE, plugins={"streams": Plugin()})
