"""Client stubs for go-plugin's example KV service (``examples/grpc/proto/kv.proto``).

Built at import from a descriptor written out here (package ``proto``: ``GetRequest``,
``GetResponse``, ``PutRequest``, ``Empty``, service ``KV``), so the demo and the
tests need no generated code.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="plugwire_kube_kv.proto", package="proto", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype in fields:
            msg.field.add(name=fname, number=number, type=ftype, label=_F.LABEL_OPTIONAL)

    message("GetRequest", ("key", 1, _F.TYPE_STRING))
    message("GetResponse", ("value", 1, _F.TYPE_BYTES))
    message("PutRequest", ("key", 1, _F.TYPE_STRING), ("value", 2, _F.TYPE_BYTES))
    message("Empty")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"proto.{name}"))
        for name in ("GetRequest", "GetResponse", "PutRequest", "Empty")
    }


_M = _build()
GetRequest = _M["GetRequest"]
GetResponse = _M["GetResponse"]
PutRequest = _M["PutRequest"]
Empty = _M["Empty"]


class KVStub:
    """``proto.KV`` client on a grpc.aio channel: ``await stub.Put(PutRequest(...))``."""

    def __init__(self, channel: Any) -> None:
        self.Get = channel.unary_unary(
            "/proto.KV/Get",
            request_serializer=GetRequest.SerializeToString,
            response_deserializer=GetResponse.FromString,
        )
        self.Put = channel.unary_unary(
            "/proto.KV/Put",
            request_serializer=PutRequest.SerializeToString,
            response_deserializer=Empty.FromString,
        )
