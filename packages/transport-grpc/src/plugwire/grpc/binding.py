"""Descriptor-driven binding: serve a plain servicer object on grpc.aio.

The servicer convention is shared with :mod:`plugwire.ttrpc` (grpc.aio's own):
unary ``async def M(self, request, context) -> reply``, server streaming as an
async generator ``M(self, request, context)``, client streaming
``async def M(self, request_iterator, context) -> reply`` and bidirectional as an
async generator ``M(self, request_iterator, context)``. Messages come from
``protoc --python_out`` only; no ``*_pb2_grpc`` module is needed::

    server = grpc.aio.server()
    add_servicer(server, MyServicer(), my_pb2.DESCRIPTOR.services_by_name["My"])

The ``context`` handed to the servicer is a :class:`PortableContext`: it offers
the same calls as ``plugwire.ttrpc.ServerContext`` (``invocation_metadata()``,
``metadata``, ``metadata_value()``, ``time_remaining()``, ``abort(code, message,
details)`` with integer status codes) and forwards anything else to the grpc.aio
context. Raising :class:`~plugwire.core.errors.RemoteError` answers with its code,
message and details (sent as ``grpc-status-details-bin``, as grpc-go does).
A method the servicer lacks answers UNIMPLEMENTED.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

import grpc
from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode

__all__ = ["PortableContext", "add_servicer", "generic_handler"]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _ld(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(data)) + data


def _status_bin(code: int, message: str, details: Sequence[bytes]) -> bytes:
    """An encoded ``google.rpc.Status`` (each detail already an encoded ``Any``)."""
    out = b"\x08" + _varint(code) if code else b""
    if message:
        out += _ld(0x12, message.encode())
    for d in details:
        out += _ld(0x1A, d)
    return out


class PortableContext:
    """A grpc.aio servicer context with the ``plugwire.ttrpc.ServerContext`` API."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        self._context = context
        self.method = method
        md: dict[str, tuple[str, ...]] = {}
        for key, value in context.invocation_metadata() or ():
            if isinstance(value, str):
                md[key] = (*md.get(key, ()), value)
        self.metadata = md
        remaining = context.time_remaining()
        self.deadline = time.monotonic() + remaining if remaining is not None else None

    @property
    def peer(self) -> str:
        return str(self._context.peer())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, vs in self.metadata.items() for v in vs)

    def metadata_value(self, key: str) -> str | None:
        low = key.lower()
        for k, vs in self.metadata.items():
            if k.lower() == low and vs:
                return vs[0]
        return None

    def time_remaining(self) -> float | None:
        remaining = self._context.time_remaining()
        return None if remaining is None else max(0.0, float(remaining))

    def abort(self, code: int, message: str = "", details: Sequence[bytes] = ()) -> None:
        """End the call with ``code``: raises :class:`RemoteError`."""
        raise RemoteError(message, code=int(code), details=details, step=self.method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: RemoteError) -> None:
    code = grpc.StatusCode.UNKNOWN
    for candidate in grpc.StatusCode:
        if candidate.value[0] == exc.code:
            code = candidate
            break
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if exc.details:
        trailing = (("grpc-status-details-bin", _status_bin(exc.code, exc.message, exc.details)),)
    await context.abort(code, exc.message, trailing)


def _wrap(func: Callable[..., Any], method: MethodDescriptor, full: str) -> Callable[..., Any]:
    if method.server_streaming:

        async def stream_handler(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            try:
                result = func(request, PortableContext(context, full))
                if not hasattr(result, "__aiter__"):
                    result = await result
                if result is not None:
                    async for item in result:
                        yield item
            except RemoteError as exc:
                await _abort(context, exc)

        return stream_handler

    async def unary_handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await func(request, PortableContext(context, full))
        except RemoteError as exc:
            await _abort(context, exc)

    return unary_handler


def _unimplemented(full: str) -> Callable[..., Any]:
    async def handler(request: Any, context: Any) -> Any:
        raise RemoteError(f"method {full} not implemented", code=StatusCode.UNIMPLEMENTED)

    return handler


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def generic_handler(
    servicer: object, service: ServiceDescriptor
) -> grpc.GenericRpcHandler[Any, Any]:
    """A grpc generic handler serving every method of ``service`` from ``servicer``."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        full = f"/{service.full_name}/{method.name}"
        func = getattr(servicer, method.name, None)
        if func is None or not callable(func):
            func = _unimplemented(full)
        request_cls: type[Message] = message_factory.GetMessageClass(method.input_type)
        wrapped = _wrap(func, method, full)
        if method.client_streaming and method.server_streaming:
            factory: Callable[..., grpc.RpcMethodHandler[Any, Any]] = (
                grpc.stream_stream_rpc_method_handler
            )
        elif method.client_streaming:
            factory = grpc.stream_unary_rpc_method_handler
        elif method.server_streaming:
            factory = grpc.unary_stream_rpc_method_handler
        else:
            factory = grpc.unary_unary_rpc_method_handler
        handlers[method.name] = factory(
            wrapped,
            request_deserializer=request_cls.FromString,
            response_serializer=_serialize,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def add_servicer(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Register ``servicer`` for ``service`` on a grpc.aio server."""
    server.add_generic_rpc_handlers((generic_handler(servicer, service),))
