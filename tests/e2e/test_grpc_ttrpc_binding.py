"""The same servicer class served by grpc.aio through plugwire.grpc.binding.

Needs both plugwire[grpc] and plugwire[ttrpc]: it runs in the e2e env (all extras).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from plugwire.core.status import StatusCode
from plugwire.grpc import binding
from plugwire.ttrpc.example import SERVICE, StreamingServicer, pb

pytestmark = [pytest.mark.anyio, pytest.mark.ttrpc]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[object]:
    server = grpc.aio.server()
    binding.add_servicer(server, StreamingServicer(), SERVICE)
    target = f"unix:{tmp_path / 'g.sock'}"
    server.add_insecure_port(target)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(target) as ch:
            yield ch
    finally:
        await server.stop(None)


def _m(name: str) -> str:
    return f"/{SERVICE.full_name}/{name}"


async def test_same_servicer_on_grpc(channel: object) -> None:
    ch = channel
    echo = ch.unary_unary(  # type: ignore[attr-defined]
        _m("Echo"),
        request_serializer=pb.EchoPayload.SerializeToString,
        response_deserializer=pb.EchoPayload.FromString,
    )
    assert (await echo(pb.EchoPayload(seq=1, msg="hi"))).seq == 2
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await echo(pb.EchoPayload(), metadata=(("fail-code", "5"), ("fail-message", "gone")))
    assert info.value.code().value[0] == StatusCode.NOT_FOUND
    assert info.value.details() == "gone"

    divide = ch.unary_stream(  # type: ignore[attr-defined]
        _m("DivideStream"),
        request_serializer=pb.Sum.SerializeToString,
        response_deserializer=pb.Part.FromString,
    )
    parts = [p.add async for p in divide(pb.Sum(sum=392, num=30))]
    assert sum(parts) == 392 and len(parts) == 30

    sum_stream = ch.stream_unary(  # type: ignore[attr-defined]
        _m("SumStream"),
        request_serializer=pb.Part.SerializeToString,
        response_deserializer=pb.Sum.FromString,
    )
    total = await sum_stream(iter([pb.Part(add=i) for i in range(10)]))
    assert (total.sum, total.num) == (45, 10)

    bidi = ch.stream_stream(  # type: ignore[attr-defined]
        _m("EchoStream"),
        request_serializer=pb.EchoPayload.SerializeToString,
        response_deserializer=pb.EchoPayload.FromString,
    )
    call = bidi(iter([pb.EchoPayload(seq=i) for i in range(5)]))
    assert [r.seq async for r in call] == [1, 2, 3, 4, 5]

    empty = ch.unary_stream(  # type: ignore[attr-defined]
        _m("EmptyPayloadStream"),
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=pb.EchoPayload.FromString,
    )
    assert [r.seq async for r in empty(empty_pb2.Empty())] == [1, 2]
