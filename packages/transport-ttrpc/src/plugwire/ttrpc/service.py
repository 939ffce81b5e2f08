"""Services from ordinary ``.proto`` files, driven by protobuf descriptors.

Generate messages with ``protoc --python_out --pyi_out`` (no ttrpc plugin needed),
then::

    server.add_servicer(MyServicer(), my_pb2.DESCRIPTOR.services_by_name["My"])
    stub = ServiceClient(client, my_pb2.DESCRIPTOR.services_by_name["My"])
    reply = await stub.Echo(my_pb2.EchoPayload(msg="hi"))

The servicer convention is grpc.aio's (see :mod:`plugwire.ttrpc.server`), so the
same class can be served by grpc with :mod:`plugwire.grpc.binding`. A method the
servicer lacks answers UNIMPLEMENTED.

Client calls through a :class:`ServiceClient`:

- unary: ``await stub.M(request) -> reply``
- server streaming: ``await stub.M(request) -> MessageStream`` (``async for``)
- client streaming: ``await stub.M(iterable_of_requests) -> reply`` (sync or async iterable)
- bidirectional: ``await stub.M() -> MessageStream`` (``send``/``close_send``/``recv``)

each taking keyword ``timeout=`` (seconds) and ``metadata=``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from plugwire.core.errors import ConfigError, ProtocolError, RemoteError
from plugwire.core.status import StatusCode

from ._connection import MethodHandler, ServerContext
from .client import Client, ClientStream, Metadata

__all__ = ["MessageStream", "ServiceClient", "message_class", "method_handlers"]

T = TypeVar("T", bound=Message)


def message_class(descriptor: Any) -> type[Message]:
    """The generated (or dynamically built) message class of a message descriptor."""
    return message_factory.GetMessageClass(descriptor)


def _serializer(cls: type[Message], where: str) -> Callable[[Any], bytes]:
    def serialize(msg: Any) -> bytes:
        if isinstance(msg, cls):
            return msg.SerializeToString()
        if msg is None:
            raise TypeError(f"{where} returned None, expected {cls.DESCRIPTOR.full_name}")
        if isinstance(msg, bytes | bytearray):
            return bytes(msg)
        raise TypeError(
            f"{where} returned {type(msg).__name__}, expected {cls.DESCRIPTOR.full_name}"
        )

    return serialize


def _deserializer(cls: type[Message]) -> Callable[[bytes], Any]:
    return cls.FromString


def _unimplemented(name: str) -> Callable[..., Any]:
    async def handler(request: Any, context: ServerContext) -> Any:
        raise RemoteError(f"method {name} not implemented", code=StatusCode.UNIMPLEMENTED)

    return handler


def method_handlers(servicer: object, service: ServiceDescriptor) -> dict[str, MethodHandler]:
    """The :class:`MethodHandler` of every method of ``service``, bound to ``servicer``."""
    handlers: dict[str, MethodHandler] = {}
    for method in service.methods:
        func = getattr(servicer, method.name, None)
        if func is None or not callable(func):
            func = _unimplemented(f"/{service.full_name}/{method.name}")
        handlers[method.name] = MethodHandler(
            func=func,
            client_streaming=method.client_streaming,
            server_streaming=method.server_streaming,
            request_deserializer=_deserializer(message_class(method.input_type)),
            response_serializer=_serializer(
                message_class(method.output_type), f"/{service.full_name}/{method.name}"
            ),
        )
    return handlers


class MessageStream(Generic[T]):
    """A streaming call with protobuf messages (wraps :class:`ClientStream`)."""

    def __init__(self, stream: ClientStream, reply_cls: type[T]) -> None:
        self.raw = stream
        self._reply_cls = reply_cls

    async def send(self, message: Message) -> None:
        await self.raw.send(message.SerializeToString())

    async def close_send(self) -> None:
        await self.raw.close_send()

    async def recv(self) -> T | None:
        """The next message, or None at the end of the stream."""
        data = await self.raw.recv()
        if data is None:
            return None
        try:
            return self._reply_cls.FromString(data)
        except DecodeError as exc:
            raise ProtocolError(
                f"cannot decode {self._reply_cls.DESCRIPTOR.full_name}: {exc}", step=self.raw.method
            ) from exc

    async def aclose(self) -> None:
        await self.raw.aclose()

    async def __aenter__(self) -> MessageStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            item = await self.recv()
            if item is None:
                return
            yield item


class _BoundMethod:
    def __init__(
        self, client: Client, service: ServiceDescriptor, method: MethodDescriptor
    ) -> None:
        self._client = client
        self._service = service.full_name
        self._name = method.name
        self._cs = method.client_streaming
        self._ss = method.server_streaming
        self._reply = message_class(method.output_type)

    def _decode(self, data: bytes) -> Message:
        try:
            return self._reply.FromString(data)
        except DecodeError as exc:
            raise ProtocolError(
                f"cannot decode {self._reply.DESCRIPTOR.full_name}: {exc}",
                step=f"/{self._service}/{self._name}",
            ) from exc

    async def __call__(
        self,
        request: Any = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        client = self._client
        if not self._cs and not self._ss:
            data = await client.call(
                self._service,
                self._name,
                request.SerializeToString(),
                timeout=timeout,
                metadata=metadata,
            )
            return self._decode(data)
        if not self._cs:
            payload = request.SerializeToString() if request is not None else None
            stream = await client.open_stream(
                self._service,
                self._name,
                payload,
                client_streaming=False,
                server_streaming=True,
                timeout=timeout,
                metadata=metadata,
            )
            return MessageStream(stream, self._reply)
        stream = await client.open_stream(
            self._service,
            self._name,
            None,
            client_streaming=True,
            server_streaming=self._ss,
            timeout=timeout,
            metadata=metadata,
        )
        if self._ss:
            if request is not None:
                raise ConfigError(
                    "a bidirectional call takes no request argument; use the returned stream",
                    step=f"/{self._service}/{self._name}",
                )
            return MessageStream(stream, self._reply)
        try:
            if isinstance(request, AsyncIterable):
                async for item in request:
                    await stream.send(item.SerializeToString())
            else:
                for item in request if request is not None else ():
                    await stream.send(item.SerializeToString())
            await stream.close_send()
            reply = await stream.recv()
        finally:
            await stream.aclose()
        if reply is None:
            raise ProtocolError(
                "stream ended without a reply", step=f"/{self._service}/{self._name}"
            )
        return self._decode(reply)


class ServiceClient:
    """Calls the methods of a protobuf service over a :class:`Client`.

    ``ServiceClient(client, pb2.DESCRIPTOR.services_by_name["Svc"]).Method(...)``; see the
    module docstring for each streaming kind. Unknown attribute -> AttributeError.
    """

    def __init__(self, client: Client, service: ServiceDescriptor) -> None:
        self._client = client
        self._service = service
        self._methods = {m.name: _BoundMethod(client, service, m) for m in service.methods}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_methods"][name]
        except KeyError:
            raise AttributeError(
                f"service {self._service.full_name} has no method {name}"
            ) from None
