"""go-plugin's ``examples/bidirectional`` counter plugin, in Python.

``Put(key, value, add_server)`` dials the host's ``AddHelper`` through the broker
id ``add_server``, asks it for ``Sum(current, value)`` and stores the result in
``kv_<key>`` (JSON ``{"Value": n}``, the Go plugin's format) under ``$KV_DIR``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc

from ..broker import GrpcBroker
from ..plugin import GrpcPlugin
from ..server import serve
from . import HANDSHAKE, counter_pb2, counter_pb2_grpc

__all__ = ["AddHelperServicer", "CounterClient", "CounterPlugin", "CounterServicer", "main"]


class CounterServicer(counter_pb2_grpc.CounterServicer):
    """``proto.Counter`` storing in files and adding through the host's AddHelper."""

    def __init__(self, broker: GrpcBroker, directory: Path) -> None:
        self._broker = broker
        self._dir = directory

    def _read(self, key: str) -> int:
        try:
            return int(json.loads((self._dir / f"kv_{key}").read_text())["Value"])
        except FileNotFoundError:
            return 0

    async def Get(
        self, request: counter_pb2.GetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> counter_pb2.GetResponse:
        return counter_pb2.GetResponse(value=self._read(request.key))

    async def Put(
        self, request: counter_pb2.PutRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> counter_pb2.Empty:
        channel = await self._broker.dial(request.add_server)
        async with channel:
            helper = counter_pb2_grpc.AddHelperStub(channel)
            reply = await helper.Sum(
                counter_pb2.SumRequest(a=self._read(request.key), b=request.value), timeout=10
            )
        (self._dir / f"kv_{request.key}").write_text(json.dumps({"Value": reply.r}))
        return counter_pb2.Empty()


class AddHelperServicer(counter_pb2_grpc.AddHelperServicer):
    """The host's ``AddHelper``: plain addition."""

    async def Sum(
        self, request: counter_pb2.SumRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> counter_pb2.SumResponse:
        return counter_pb2.SumResponse(r=request.a + request.b)


class CounterClient:
    """Host side of ``counter``: ``put`` serves an AddHelper through the broker for the call."""

    def __init__(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> None:
        self._broker = broker
        self._stub = counter_pb2_grpc.CounterStub(channel)

    async def put(
        self, key: str, value: int, helper: counter_pb2_grpc.AddHelperServicer | None = None
    ) -> None:
        impl = helper or AddHelperServicer()
        broker_id = self._broker.next_id()
        server = await self._broker.accept(
            broker_id, lambda s: counter_pb2_grpc.add_AddHelperServicer_to_server(impl, s)
        )
        async with server:
            await self._stub.Put(counter_pb2.PutRequest(add_server=broker_id, key=key, value=value))

    async def get(self, key: str) -> int:
        reply = await self._stub.Get(counter_pb2.GetRequest(key=key))
        return int(reply.value)


class CounterPlugin(GrpcPlugin):
    """The ``counter`` plugin of go-plugin's bidirectional example."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory or Path(os.environ.get("KV_DIR") or ".")

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        counter_pb2_grpc.add_CounterServicer_to_server(CounterServicer(broker, self._dir), server)

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> CounterClient:
        return CounterClient(broker, channel)


def main() -> None:
    """Serve ``counter`` (exits the process)."""
    serve(handshake=HANDSHAKE, plugins={"counter": CounterPlugin()})


if __name__ == "__main__":
    main()
