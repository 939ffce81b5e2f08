"""The service schema, built from a descriptor at import time.

It is the equivalent of this ``.proto`` file::

    syntax = "proto3";
    package {{ cookiecutter.proto_package }};

    message GreetRequest { string name = 1; }
    message GreetReply { string message = 1; }
    message CountRequest { int32 start = 1; }
    message Tick { int32 value = 1; }

    service {{ cookiecutter.service_name }} {
      rpc Greet(GreetRequest) returns (GreetReply);
      rpc Countdown(CountRequest) returns (stream Tick);
    }

ttrpc needs no code generator: plugwire binds services from protobuf descriptors.
For a larger schema, write the ``.proto`` file and compile the messages with
``python -m grpc_tools.protoc -I proto --python_out=src --pyi_out=src proto/*.proto``
(``pip install grpcio-tools``), then take ``SERVICE`` from
``<module>_pb2.DESCRIPTOR.services_by_name["{{ cookiecutter.service_name }}"]``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from plugwire.ttrpc import message_class

PROTO_PACKAGE = "{{ cookiecutter.proto_package }}"
SERVICE_NAME = "{{ cookiecutter.service_name }}"

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_INT32 = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL


def _build() -> ServiceDescriptor:
    proto = descriptor_pb2.FileDescriptorProto(
        name=PROTO_PACKAGE.replace(".", "/") + "/service.proto",
        package=PROTO_PACKAGE,
        syntax="proto3",
    )
    for name, field, kind in [
        ("GreetRequest", "name", _STRING),
        ("GreetReply", "message", _STRING),
        ("CountRequest", "start", _INT32),
        ("Tick", "value", _INT32),
    ]:
        message = proto.message_type.add(name=name)
        message.field.add(name=field, number=1, type=kind, label=_OPTIONAL, json_name=field)
    service = proto.service.add(name=SERVICE_NAME)
    service.method.add(
        name="Greet",
        input_type=f".{PROTO_PACKAGE}.GreetRequest",
        output_type=f".{PROTO_PACKAGE}.GreetReply",
    )
    service.method.add(
        name="Countdown",
        input_type=f".{PROTO_PACKAGE}.CountRequest",
        output_type=f".{PROTO_PACKAGE}.Tick",
        server_streaming=True,
    )
    # A pool of our own: no clash with modules generated into the default pool.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool.FindServiceByName(f"{PROTO_PACKAGE}.{SERVICE_NAME}")


#: The service descriptor: ``Server.add_servicer(servicer, SERVICE)``,
#: ``ServiceClient(client, SERVICE)``.
SERVICE = _build()


def _message(name: str) -> Any:
    return message_class(SERVICE.file.message_types_by_name[name])


GreetRequest = _message("GreetRequest")
GreetReply = _message("GreetReply")
CountRequest = _message("CountRequest")
Tick = _message("Tick")
