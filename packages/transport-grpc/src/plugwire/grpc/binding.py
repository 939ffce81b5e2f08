"""Descriptor-driven binding: serve a plain servicer object on grpc.aio.

The servicer convention is shared with :mod:`plugwire.ttrpc` (grpc.aio's own):
unary ``async def M(self, request, context) -> reply``, server streaming as an
async generator ``M(self, request, context)``, client streaming
``async def M(self, request_iterator, context) -> reply`` and bidirectional as an
async generator ``M(self, request_iterator, context)``. Messages come from
``protoc --python_out`` only; no ``*_pb2_grpc`` module is needed::

    server = grpc.aio.server()
    add_servicer(server, MyServicer(), my_pb2.DESCRIPTOR.services_by_name["My"])

The ``context`` handed to the servicer is a :class:`PortableContext`, grpc's
implementation of :class:`plugwire.core.rpc.ServicerContext` (the contract ttrpc,
http and inproc implement too: ``invocation_metadata()``, ``metadata_value()``,
``time_remaining()``, ``send_initial_metadata``/``set_trailing_metadata``,
``abort(code, message, details)`` with plugwire, integer or grpc codes,
``cancelled()``); anything else is forwarded to the grpc.aio context. Raising
:class:`~plugwire.core.errors.RemoteError` answers with its code, message and details
(sent as ``grpc-status-details-bin``, as grpc-go does); a code set with
``set_code`` (grpcio-tools' generated defaults) is answered as set. A method the
servicer lacks answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NoReturn

import anyio
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

import grpc
from plugwire.core.errors import RemoteError
from plugwire.core.rpc import (
    MetadataLike,
    RpcContext,
    RpcError,
    coerce_code,
    encode_status,
    status_of,
)
from plugwire.core.status import StatusCode

__all__ = ["PortableContext", "add_servicer", "generic_handler", "grpc_code"]

log = logging.getLogger("plugwire.grpc.binding")


def grpc_code(code: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` of a numeric status code (UNKNOWN when not canonical)."""
    for candidate in grpc.StatusCode:
        if candidate.value[0] == code:
            return candidate
    return grpc.StatusCode.UNKNOWN


def _status_bin(code: int, message: str, details: Sequence[bytes]) -> bytes:
    """An encoded ``google.rpc.Status`` (each detail already an encoded ``Any``)."""
    return encode_status(code, message, details)


class PortableContext(RpcContext):
    """A grpc.aio servicer context implementing :class:`plugwire.core.rpc.ServicerContext`.

    Metadata out, codes, cancellation and the deadline are grpc's own (forwarded);
    ``abort`` takes plugwire, integer or ``grpc.StatusCode`` codes and encoded
    ``Any`` details. Anything else is forwarded to the grpc.aio context.
    """

    __slots__ = ("_context",)

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        md: dict[str, tuple[str, ...]] = {}
        for key, value in context.invocation_metadata() or ():
            if isinstance(value, str):
                md[key] = (*md.get(key, ()), value)
        remaining = context.time_remaining()
        deadline = anyio.current_time() + remaining if remaining is not None else None
        super().__init__(method, "", md, deadline)
        self._context = context

    @property
    def peer(self) -> str:
        return str(self._context.peer())

    @peer.setter
    def peer(self, value: str) -> None:
        pass

    def time_remaining(self) -> float | None:
        remaining = self._context.time_remaining()
        return None if remaining is None else max(0.0, float(remaining))

    async def send_initial_metadata(self, metadata: MetadataLike) -> None:
        await super().send_initial_metadata(metadata)
        await self._context.send_initial_metadata(self.initial_metadata_out)

    def set_trailing_metadata(self, metadata: MetadataLike) -> None:
        super().set_trailing_metadata(metadata)
        self._context.set_trailing_metadata(self.trailing_metadata_out)

    def set_code(self, code: object) -> None:
        super().set_code(code)
        self._context.set_code(grpc_code(coerce_code(code)))

    def set_details(self, details: str) -> None:
        super().set_details(details)
        self._context.set_details(details)

    def abort(self, code: object, message: str = "", details: Sequence[bytes] = ()) -> NoReturn:
        """End the call with ``code``: raises :class:`RpcError` (answered by the binding)."""
        super().abort(code, message, details)

    def cancelled(self) -> bool:
        """True once the client cancelled: grpc's flag, or the handler task being
        cancelled (grpc cancels it when the client does, before it sets the flag)."""
        if self._context.cancelled():
            return True
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    def done(self) -> bool:
        return bool(self._context.done())

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._context.add_done_callback(lambda _ctx: callback(self))  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name == "_context":
            raise AttributeError(name)
        return getattr(self._context, name)


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    exc: BaseException,
    portable: PortableContext | None = None,
) -> None:
    code, message, details = status_of(exc, portable)
    if code == StatusCode.UNKNOWN and not isinstance(exc, RemoteError):
        log.warning("grpc: servicer raised", exc_info=exc)
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if isinstance(exc, RpcError) and exc.trailing_metadata:
        trailing = exc.trailing_metadata
    elif portable is not None:
        trailing = portable.trailing_metadata_out
    if details:
        trailing = (*trailing, ("grpc-status-details-bin", _status_bin(code, message, details)))
    await context.abort(grpc_code(code), message, trailing)


def _wrap(func: Callable[..., Any], method: MethodDescriptor, full: str) -> Callable[..., Any]:
    if method.server_streaming:

        async def stream_handler(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            portable = PortableContext(context, full)
            try:
                result = func(request, portable)
                if not hasattr(result, "__aiter__") and hasattr(result, "__await__"):
                    result = await result
                if result is None:
                    pass
                elif hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    for item in result:
                        yield item
                if portable._code:
                    raise RpcError(portable._details, code=portable._code)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, portable)

        return stream_handler

    async def unary_handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        portable = PortableContext(context, full)
        try:
            result = func(request, portable)
            if hasattr(result, "__await__"):
                result = await result
            if portable._code:
                raise RpcError(portable._details, code=portable._code)
            return result
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, portable)

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
