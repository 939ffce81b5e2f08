"""The transport-neutral RPC contract: one servicer, any wire.

A servicer is an ordinary object following the grpc.aio convention (a grpcio-tools
``*Servicer`` subclass, served unchanged): ``M(self, request, context)`` returns the
reply (``async def`` or plain ``def``), a server-streaming ``M`` is an async (or
plain) generator, and a client-streaming ``M`` receives an async iterator of
requests. Every transport (``plugwire.transports`` entry points: grpc, ttrpc, http,
inproc) serves such servicers with :meth:`plugwire.core.transport.Transport.serve` and
calls them through :meth:`~plugwire.core.transport.Transport.stub`.

This module holds what is shared and owns no wire:

- :class:`ServicerContext`, the servicer-side protocol every transport's context
  implements, and :class:`RpcContext`, the implementation most transports subclass:
  invocation metadata in, initial and trailing metadata out, deadline and
  ``time_remaining()``, cancellation (``cancelled()``, ``add_done_callback``), peer,
  ``abort``/``set_code``/``set_details`` taking plugwire, integer or ``grpc.StatusCode``
  codes;
- :class:`RpcError`, the rich error (status code, message, encoded
  ``google.rpc.Status.details``, trailing metadata) a client stub raises for a peer's
  error status, and :func:`status_of`, how any exception becomes a status;
- :class:`RpcMethod` and :class:`ServiceSpec`: the four method kinds built from a
  protobuf ``ServiceDescriptor`` (duck-typed: core does not import protobuf; message
  classes are looked up lazily when a descriptor is used), :func:`bind` pairing a
  servicer with its service (found by itself for grpcio-tools servicers);
- :class:`Stub`, the client side built on a small per-transport :class:`Invoker`: a
  stub has the method names of a grpc stub; unary calls are awaitable
  (:class:`UnaryCall`), streams async-iterable (:class:`StreamCall`);
- :func:`serve_call`, the server-side driver of one call for transports that have no
  servicer runtime of their own (http, inproc).

Nothing here knows a protocol family.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

import anyio
import attrs

from .errors import ConfigError, ConnectionClosedError, RemoteError
from .status import StatusCode

__all__ = [
    "KINDS",
    "Invoker",
    "Kind",
    "Metadata",
    "MetadataLike",
    "RawStream",
    "RpcContext",
    "RpcError",
    "RpcMethod",
    "RpcUnavailableError",
    "Service",
    "ServiceSpec",
    "ServicerContext",
    "StatusCode",
    "StreamCall",
    "Stub",
    "UnaryCall",
    "bind",
    "bind_all",
    "coerce_code",
    "decode_status",
    "encode_status",
    "normalize_metadata",
    "serve_call",
    "status_of",
]

Kind = Literal["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
#: The four method kinds, in the order grpc names them.
KINDS: tuple[Kind, ...] = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")

#: Metadata as ``(key, value)`` pairs in order (keys lower-case on HTTP-based wires).
Metadata = tuple[tuple[str, str], ...]
#: Metadata as accepted: a mapping (a value may be a sequence of values) or pairs.
MetadataLike = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


def normalize_metadata(metadata: MetadataLike | None) -> Metadata:
    """``(key, value)`` pairs in order; sequence values of a mapping expand to pairs."""
    if not metadata:
        return ()
    if isinstance(metadata, Mapping):
        out: list[tuple[str, str]] = []
        for key, value in metadata.items():
            if isinstance(value, str):
                out.append((str(key), value))
            else:
                out.extend((str(key), str(v)) for v in value)
        return tuple(out)
    return tuple((str(k), v if isinstance(v, str) else str(v)) for k, v in metadata)


def coerce_code(code: object) -> int:
    """A status code as its number: accepts ints, :class:`StatusCode` and
    ``grpc.StatusCode`` (whose value is ``(number, name)``)."""
    if isinstance(code, int):
        return int(code)
    value = getattr(code, "value", None)
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return value[0]
    if isinstance(value, int):
        return value
    raise ConfigError("not a status code", step="status", expected="int or StatusCode", seen=code)


# -- errors ---------------------------------------------------------------------------


class RpcError(RemoteError):
    """A call ended with a non-OK status: ``code`` (numeric gRPC code, see
    :attr:`status`), ``message``, ``details`` (each an encoded
    ``google.protobuf.Any``, as in ``google.rpc.Status.details``) and the
    ``trailing_metadata`` and ``initial_metadata`` the server sent (empty on wires
    without response metadata). Raised by a servicer (or ``context.abort``) it is the
    status answered; raised by a stub it is the status received.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | StatusCode,
        details: Sequence[bytes] = (),
        trailing_metadata: MetadataLike | None = None,
        initial_metadata: MetadataLike | None = None,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, code=int(code), details=details, peer=peer, step=step)
        self.trailing_metadata = normalize_metadata(trailing_metadata)
        self.initial_metadata = normalize_metadata(initial_metadata)

    @property
    def status(self) -> StatusCode | int:
        """The code as a :class:`StatusCode` (the bare int when not a canonical code)."""
        try:
            return StatusCode(self.code)
        except ValueError:
            return self.code

    @classmethod
    def from_remote(cls, exc: RemoteError) -> RpcError:
        """The same status as an :class:`RpcError` (``exc`` itself when it is one)."""
        if isinstance(exc, RpcError):
            return exc
        err = cls(exc.message, code=exc.code, details=exc.details, peer=exc.peer, step=exc.step)
        err.__cause__ = exc
        return err


class RpcUnavailableError(RpcError, ConnectionClosedError):
    """UNAVAILABLE reported by a wire's own runtime (the peer is gone or unreachable):
    both an :class:`RpcError` and a :class:`ConnectionClosedError`."""


# -- google.rpc.Status encoding --------------------------------------------------------


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


def encode_status(code: int, message: str = "", details: Sequence[bytes] = ()) -> bytes:
    """An encoded ``google.rpc.Status`` (each detail already an encoded ``Any``), as
    sent in grpc's ``grpc-status-details-bin`` trailer."""
    out = b"\x08" + _varint(code) if code else b""
    if message:
        out += _ld(0x12, message.encode())
    for d in details:
        out += _ld(0x1A, d)
    return out


def decode_status(data: bytes) -> tuple[int, str, tuple[bytes, ...]]:
    """``(code, message, details)`` of an encoded ``google.rpc.Status``; raises
    :class:`~plugwire.core.errors.ProtocolError` when it does not parse."""
    from .errors import ProtocolError

    code, message, details = 0, "", []
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end or shift > 63:
                raise ProtocolError("truncated varint", step="decode status", seen=data[:64])
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
            if field == 1:
                code = value
        elif wire == 2:
            n = varint()
            if pos + n > end:
                raise ProtocolError("truncated field", step="decode status", seen=data[:64])
            chunk = data[pos : pos + n]
            pos += n
            if field == 2:
                message = chunk.decode("utf-8", "replace")
            elif field == 3:
                details.append(chunk)
        else:
            raise ProtocolError(
                "unexpected wire type", step="decode status", expected="0 or 2", seen=wire
            )
    return code, message, tuple(details)


# -- methods and services ---------------------------------------------------------------


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory  # only when a descriptor is used

    return message_factory.GetMessageClass(descriptor)


@attrs.frozen
class RpcMethod:
    """One method of a service: names, streaming kind and message classes.

    ``request_type``/``response_type`` are message classes with ``FromString`` and
    ``SerializeToString`` (protobuf's, or anything shaped alike).
    """

    service: str
    name: str
    client_streaming: bool
    server_streaming: bool
    request_type: Any
    response_type: Any

    @property
    def full_name(self) -> str:
        """``/pkg.Service/Method``, as on the grpc and ttrpc wires."""
        return f"/{self.service}/{self.name}"

    @property
    def kind(self) -> Kind:
        return KINDS[self.client_streaming * 2 + self.server_streaming]

    @classmethod
    def from_descriptor(cls, service: str, method: Any) -> RpcMethod:
        return cls(
            service=service,
            name=method.name,
            client_streaming=bool(method.client_streaming),
            server_streaming=bool(method.server_streaming),
            request_type=_message_class(method.input_type),
            response_type=_message_class(method.output_type),
        )

    def decode_request(self, data: bytes) -> Any:
        try:
            return self.request_type.FromString(data)
        except Exception as exc:
            raise RpcError(
                f"cannot decode request: {exc}", code=StatusCode.INTERNAL, step=self.full_name
            ) from exc

    def decode_response(self, data: bytes) -> Any:
        from .errors import ProtocolError

        try:
            return self.response_type.FromString(data)
        except Exception as exc:
            raise ProtocolError(
                f"cannot decode reply: {exc}",
                step=self.full_name,
                expected=getattr(self.response_type, "__name__", "reply message"),
                seen=data[:64],
            ) from exc

    def encode(self, message: Any, expected: Any) -> bytes:
        if isinstance(message, bytes | bytearray):
            return bytes(message)
        if not isinstance(message, expected):
            raise RpcError(
                f"{self.full_name} got {type(message).__name__}, expected {expected.__name__}",
                code=StatusCode.INTERNAL,
                step=self.full_name,
            )
        return bytes(message.SerializeToString())


@attrs.frozen
class ServiceSpec:
    """A service: full name, methods by name, and the descriptor it came from."""

    full_name: str
    methods: Mapping[str, RpcMethod]
    descriptor: Any = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_descriptor(cls, descriptor: Any) -> ServiceSpec:
        """From a protobuf ``ServiceDescriptor`` (``pb2.DESCRIPTOR.services_by_name[...]``)."""
        if isinstance(descriptor, ServiceSpec):
            return descriptor
        cached = _SPECS.get(id(descriptor))
        if cached is not None and cached.descriptor is descriptor:
            return cached
        try:
            name = descriptor.full_name
            methods = {m.name: RpcMethod.from_descriptor(name, m) for m in descriptor.methods}
        except AttributeError as exc:
            raise ConfigError(
                "not a service descriptor",
                step="service",
                expected="a protobuf ServiceDescriptor",
                seen=repr(descriptor),
            ) from exc
        spec = cls(name, methods, descriptor)
        _SPECS[id(descriptor)] = spec
        return spec

    def method(self, full_or_name: str) -> RpcMethod | None:
        name = full_or_name.rpartition("/")[2]
        m = self.methods.get(name)
        return m if m is not None and (full_or_name in (name, m.full_name)) else None


_SPECS: dict[int, ServiceSpec] = {}


@attrs.frozen
class Service:
    """A servicer bound to the service it implements."""

    servicer: object
    spec: ServiceSpec

    def handler(self, method: RpcMethod) -> Callable[..., Any]:
        """The servicer's callable for ``method`` (UNIMPLEMENTED when it has none)."""
        func = getattr(self.servicer, method.name, None)
        if func is None or not callable(func):
            return _unimplemented(method.full_name)
        return func  # type: ignore[no-any-return]


def _unimplemented(full: str) -> Callable[..., Any]:
    async def handler(request: Any, context: Any) -> Any:
        raise RpcError(f"method {full} not implemented", code=StatusCode.UNIMPLEMENTED)

    return handler


def _find_descriptor(servicer: object) -> Any:
    """The ``ServiceDescriptor`` of a grpcio-tools ``FooServicer`` subclass: ``Foo``
    in the ``*_pb2`` module its ``*_pb2_grpc`` module imports."""
    for cls in type(servicer).__mro__:
        if not cls.__name__.endswith("Servicer") or cls.__name__ == "Servicer":
            continue
        short = cls.__name__[: -len("Servicer")]
        module = sys.modules.get(cls.__module__)
        if module is None:
            continue
        for value in [module, *vars(module).values()]:
            desc = getattr(value, "DESCRIPTOR", None)
            services = getattr(desc, "services_by_name", None)
            if services is not None and short in services:
                return services[short]
    raise ConfigError(
        "cannot tell which service this servicer implements",
        step="bind",
        expected="a grpcio-tools *Servicer subclass, or (servicer, ServiceDescriptor)",
        seen=type(servicer).__qualname__,
    )


def bind(servicer: object, descriptor: Any = None) -> Service:
    """Pair ``servicer`` with its service: ``descriptor`` (a protobuf
    ``ServiceDescriptor`` or :class:`ServiceSpec`) or, for a grpcio-tools ``*Servicer``
    subclass, the one found from its generated module."""
    if isinstance(servicer, Service):
        return servicer
    return Service(servicer, ServiceSpec.from_descriptor(descriptor or _find_descriptor(servicer)))


def bind_all(servicers: Iterable[object]) -> list[Service]:
    """:func:`bind` each entry: a servicer, a :class:`Service` or a ``(servicer,
    descriptor)`` pair. Raises :class:`ConfigError` for a service given twice."""
    out: list[Service] = []
    seen: set[str] = set()
    for entry in servicers:
        if isinstance(entry, tuple) and len(entry) == 2:
            svc = bind(entry[0], entry[1])
        else:
            svc = bind(entry)
        if svc.spec.full_name in seen:
            raise ConfigError("service served twice", step="serve", seen=svc.spec.full_name)
        seen.add(svc.spec.full_name)
        out.append(svc)
    return out


# -- the servicer side ---------------------------------------------------------------------


@runtime_checkable
class ServicerContext(Protocol):
    """What a servicer may rely on, on every wire (grpc.aio's names)."""

    method: str

    @property
    def peer(self) -> str: ...

    def invocation_metadata(self) -> Metadata: ...

    def metadata_value(self, key: str) -> str | None: ...

    def time_remaining(self) -> float | None: ...

    async def send_initial_metadata(self, metadata: MetadataLike) -> None: ...

    def set_trailing_metadata(self, metadata: MetadataLike) -> None: ...

    def set_code(self, code: object) -> None: ...

    def set_details(self, details: str) -> None: ...

    def abort(self, code: object, message: str = "", details: Sequence[bytes] = ()) -> NoReturn:
        """End the call; usable as ``context.abort(...)`` and ``await context.abort(...)``."""
        ...

    def cancelled(self) -> bool: ...

    def add_done_callback(self, callback: Callable[[Any], None]) -> None: ...


class RpcContext:
    """The :class:`ServicerContext` of transports without one of their own.

    ``metadata`` maps key -> values as received; ``deadline`` is on the anyio clock
    (``anyio.current_time()``) or None. Transports call :meth:`_finish` when the call
    ends (``cancelled=True`` when the client went away).
    """

    __slots__ = (
        "_callbacks",
        "_cancelled",
        "_code",
        "_details",
        "_done",
        "_initial",
        "_trailing",
        "deadline",
        "metadata",
        "method",
        "peer",
    )

    def __init__(
        self,
        method: str,
        peer: str,
        metadata: Mapping[str, tuple[str, ...]],
        deadline: float | None,
    ) -> None:
        self.method = method
        self.peer = peer
        self.metadata = metadata
        self.deadline = deadline
        self._code: int | None = None
        self._details = ""
        self._trailing: Metadata = ()
        self._initial: Metadata | None = None
        self._cancelled = False
        self._done = False
        self._callbacks: list[Callable[[Any], None]] | None = None

    # metadata in
    def invocation_metadata(self) -> Metadata:
        """(key, value) pairs, like grpc's ``ServicerContext.invocation_metadata()``."""
        return tuple((k, v) for k, vs in self.metadata.items() for v in vs)

    def metadata_value(self, key: str) -> str | None:
        """The first value of ``key`` (case-insensitive)."""
        values = self.metadata.get(key)
        if values:
            return values[0]
        low = key.lower()
        for k, vs in self.metadata.items():
            if k.lower() == low and vs:
                return vs[0]
        return None

    # deadline
    def time_remaining(self) -> float | None:
        """Seconds until the deadline, or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - anyio.current_time())

    # metadata out
    async def send_initial_metadata(self, metadata: MetadataLike) -> None:
        """Set the initial (header) metadata; sent with the first reply at the latest."""
        if self._initial is not None:
            raise ConfigError("initial metadata already sent", step=self.method)
        self._initial = normalize_metadata(metadata)

    def set_trailing_metadata(self, metadata: MetadataLike) -> None:
        self._trailing = normalize_metadata(metadata)

    @property
    def initial_metadata_out(self) -> Metadata:
        return self._initial or ()

    @property
    def trailing_metadata_out(self) -> Metadata:
        return self._trailing

    # status
    def set_code(self, code: object) -> None:
        self._code = coerce_code(code)

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> int | None:
        return self._code

    def details(self) -> str:
        return self._details

    def abort(self, code: object, message: str = "", details: Sequence[bytes] = ()) -> NoReturn:
        """End the call with ``code``: raises :class:`RpcError` (carrying the trailing
        metadata set so far)."""
        raise RpcError(
            message,
            code=coerce_code(code),
            details=details,
            trailing_metadata=self._trailing,
            step=self.method,
        )

    # cancellation
    def cancelled(self) -> bool:
        """True once the client cancelled or went away."""
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(context)`` when the call ends (at once if it has ended)."""
        if self._done:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def _finish(self, *, cancelled: bool = False) -> None:
        if cancelled:
            self._cancelled = True
        if self._done:
            return
        self._done = True
        callbacks, self._callbacks = self._callbacks, None
        for cb in callbacks or ():
            with contextlib.suppress(Exception):
                cb(self)


def status_of(exc: BaseException, context: Any = None) -> tuple[int, str, tuple[bytes, ...]]:
    """The status a servicer's exception answers: a :class:`RemoteError`'s own; a code
    set with ``context.set_code`` (grpcio-tools' generated defaults set UNIMPLEMENTED,
    then raise NotImplementedError); NotImplementedError: UNIMPLEMENTED; else UNKNOWN."""
    if isinstance(exc, RemoteError):
        return exc.code, exc.message, exc.details
    code = getattr(context, "_code", None)
    if isinstance(code, int) and code:
        return code, getattr(context, "_details", "") or str(exc), ()
    if isinstance(exc, NotImplementedError):
        return int(StatusCode.UNIMPLEMENTED), str(exc) or "method not implemented", ()
    return int(StatusCode.UNKNOWN), str(exc) or type(exc).__name__, ()


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def _iterate(result: Any) -> AsyncGenerator[Any, None]:
    result = await _maybe_await(result)
    if result is None:
        return
    if isinstance(result, AsyncIterable):
        async for item in result:
            yield item
    else:
        for item in result:
            yield item


async def serve_call(
    method: RpcMethod,
    func: Callable[..., Any],
    context: RpcContext,
    requests: bytes | AsyncIterator[bytes],
    emit: Callable[[bytes], Awaitable[None]],
    *,
    max_message_size: int | None = None,
) -> None:
    """Run one call of ``func`` (a servicer method) for ``method``.

    ``requests`` is the request bytes (unary request) or an async iterator of them;
    each reply is serialized and passed to ``emit``. Returns when the call succeeded;
    raises what the servicer raised (:func:`status_of` turns it into a status), or
    :class:`RpcError` DEADLINE_EXCEEDED when ``context.deadline`` passed,
    RESOURCE_EXHAUSTED when a reply is over ``max_message_size``, or the code set
    with ``context.set_code``. Cancellation from outside marks the context cancelled.
    """
    response_type = method.response_type

    async def send(message: Any) -> None:
        data = method.encode(message, response_type)
        if max_message_size is not None and len(data) > max_message_size:
            raise RpcError(
                f"reply of {len(data)} bytes exceeds the limit of {max_message_size}",
                code=StatusCode.RESOURCE_EXHAUSTED,
                step=method.full_name,
            )
        await emit(data)

    async def decoded(items: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for data in items:
            yield method.decode_request(data)

    arg: Any
    if isinstance(requests, bytes | bytearray):
        arg = method.decode_request(bytes(requests))
        if method.client_streaming:
            arg = _single(arg)
    else:
        arg = decoded(requests)
        if not method.client_streaming:
            items = [x async for x in arg]
            if len(items) != 1:
                raise RpcError(
                    f"expected one request, got {len(items)}",
                    code=StatusCode.INTERNAL,
                    step=method.full_name,
                )
            arg = items[0]
    try:
        with anyio.CancelScope(
            deadline=context.deadline if context.deadline is not None else float("inf")
        ) as scope:
            result = func(arg, context)
            if method.server_streaming:
                async with contextlib.aclosing(_iterate(result)) as replies:
                    async for item in replies:
                        await send(item)
            else:
                await send(await _maybe_await(result))
    except anyio.get_cancelled_exc_class():
        context._finish(cancelled=True)
        raise
    if scope.cancelled_caught:
        raise RpcError(
            "context deadline exceeded", code=StatusCode.DEADLINE_EXCEEDED, step=method.full_name
        )
    if context._code:
        raise RpcError(context._details, code=context._code, step=method.full_name)


async def _single(item: Any) -> AsyncIterator[Any]:
    yield item


# -- the client side ---------------------------------------------------------------------


class RawStream(Protocol):
    """One call on the wire, in bytes: what a transport's :class:`Invoker` opens.

    ``recv`` returns the next reply or None at the end; it raises :class:`RpcError`
    for an error status and :class:`ConnectionClosedError` when the peer went away.
    ``initial_metadata``/``trailing_metadata`` are filled as they arrive.
    """

    initial_metadata: Metadata
    trailing_metadata: Metadata

    async def send(self, data: bytes) -> None: ...

    async def close_send(self) -> None: ...

    async def recv(self) -> bytes | None: ...

    async def aclose(self) -> None: ...


class Invoker(Protocol):
    """What a transport provides to back a :class:`Stub`."""

    peer: str

    async def open(
        self, method: RpcMethod, *, timeout: float | None, metadata: Metadata
    ) -> RawStream:
        """Start a call of ``method`` (any kind the wire supports; otherwise raise
        :class:`RpcError` UNIMPLEMENTED saying the wire lacks that kind)."""
        ...

    async def unary(
        self, method: RpcMethod, request: bytes, *, timeout: float | None, metadata: Metadata
    ) -> tuple[bytes, Metadata, Metadata]:
        """One unary call: ``(reply, initial metadata, trailing metadata)``."""
        ...

    async def aclose(self) -> None: ...


#: Seconds past a call's timeout before the stub gives up on its own.
_BACKSTOP = 1.0


def _deadline_error(method: RpcMethod, peer: str) -> RpcError:
    return RpcError(
        "context deadline exceeded",
        code=StatusCode.DEADLINE_EXCEEDED,
        peer=peer,
        step=method.full_name,
    )


class UnaryCall:
    """A call with one reply: ``await call`` gives it; then
    ``await call.initial_metadata()`` / ``await call.trailing_metadata()``."""

    def __init__(self, run: Callable[[UnaryCall], Awaitable[Any]]) -> None:
        self._run = run
        self._initial: Metadata = ()
        self._trailing: Metadata = ()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run(self).__await__()

    async def initial_metadata(self) -> Metadata:
        return self._initial

    async def trailing_metadata(self) -> Metadata:
        return self._trailing


class StreamCall:
    """A call with a reply stream: ``async for reply in call``, or ``read()`` (None at
    the end); bidirectional calls also ``write(request)`` and ``done_writing()``.
    Metadata as :class:`UnaryCall`. ``aclose()`` abandons the call."""

    def __init__(
        self,
        invoker: Invoker,
        method: RpcMethod,
        timeout: float | None,
        metadata: Metadata,
        first: Any = None,
        requests: Any = None,
    ) -> None:
        self._invoker = invoker
        self._method = method
        self._deadline = anyio.current_time() + timeout + _BACKSTOP if timeout is not None else None
        self._timeout = timeout
        self._metadata = metadata
        self._first = first
        self._requests = requests
        self._raw: RawStream | None = None
        self._ended = False
        self._sender: Any = None

    async def _stream(self) -> RawStream:
        if self._raw is None:
            timeout = self._timeout
            with self._scope() as scope:
                self._raw = await self._invoker.open(
                    self._method, timeout=timeout, metadata=self._metadata
                )
                if self._first is not None:
                    await self._raw.send(self._encode(self._first))
                    await self._raw.close_send()
            if scope.cancelled_caught:
                raise _deadline_error(self._method, self._invoker.peer)
            if self._requests is not None:
                await self._start_sender()
        assert self._raw is not None
        return self._raw

    def _scope(self) -> anyio.CancelScope:
        return anyio.CancelScope(
            deadline=self._deadline if self._deadline is not None else float("inf")
        )

    def _encode(self, message: Any) -> bytes:
        return self._method.encode(message, self._method.request_type)

    async def _send_all(self) -> None:
        raw = self._raw
        assert raw is not None
        requests, self._requests = self._requests, None
        with contextlib.suppress(Exception):
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    await raw.send(self._encode(item))
            else:
                for item in requests:
                    await raw.send(self._encode(item))
            await raw.close_send()

    async def _start_sender(self) -> None:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio: send everything first (no background task here)
            await self._send_all()
            return
        self._sender = asyncio.ensure_future(self._send_all())

    async def write(self, request: Any) -> None:
        raw = await self._stream()
        await raw.send(self._encode(request))

    async def done_writing(self) -> None:
        raw = await self._stream()
        await raw.close_send()

    async def read(self) -> Any:
        """The next reply, or None at the end of the stream."""
        if self._ended:
            return None
        raw = await self._stream()
        with self._scope() as scope:
            try:
                data = await raw.recv()
            except RpcError:
                raise
            except RemoteError as exc:
                raise RpcError.from_remote(exc) from exc
        if scope.cancelled_caught:
            await self.aclose()
            raise _deadline_error(self._method, self._invoker.peer)
        if data is None:
            self._ended = True
            return None
        return self._method.decode_response(data)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            item = await self.read()
            if item is None:
                return
            yield item

    async def initial_metadata(self) -> Metadata:
        return self._raw.initial_metadata if self._raw is not None else ()

    async def trailing_metadata(self) -> Metadata:
        return self._raw.trailing_metadata if self._raw is not None else ()

    async def aclose(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        if self._raw is not None:
            with anyio.CancelScope(shield=True):
                await self._raw.aclose()


class _StubMethod:
    def __init__(self, invoker: Invoker, method: RpcMethod) -> None:
        self._invoker = invoker
        self._method = method

    def __call__(
        self,
        request: Any = None,
        *,
        timeout: float | None = None,
        metadata: MetadataLike | None = None,
    ) -> Any:
        md = normalize_metadata(metadata)
        method = self._method
        invoker = self._invoker
        if method.client_streaming and method.server_streaming:
            return StreamCall(invoker, method, timeout, md, requests=request)
        if method.server_streaming:
            return StreamCall(invoker, method, timeout, md, first=request)
        if method.client_streaming:

            async def run_client_stream(call: UnaryCall) -> Any:
                stream = StreamCall(invoker, method, timeout, md, requests=request or ())
                try:
                    reply = await stream.read()
                    if reply is None:
                        raise RpcError(
                            "stream ended without a reply",
                            code=StatusCode.INTERNAL,
                            peer=invoker.peer,
                            step=method.full_name,
                        )
                    while await stream.read() is not None:
                        pass
                    call._initial = await stream.initial_metadata()
                    call._trailing = await stream.trailing_metadata()
                    return reply
                finally:
                    await stream.aclose()

            return UnaryCall(run_client_stream)

        async def run_unary(call: UnaryCall) -> Any:
            data = method.encode(request, method.request_type)
            # The wire enforces ``timeout`` (and answers DEADLINE_EXCEEDED); this local
            # deadline, a little later, only backs up a peer that never answers.
            with anyio.CancelScope(
                deadline=anyio.current_time() + timeout + _BACKSTOP
                if timeout is not None
                else float("inf")
            ) as scope:
                try:
                    reply, call._initial, call._trailing = await invoker.unary(
                        method, data, timeout=timeout, metadata=md
                    )
                except RpcError:
                    raise
                except RemoteError as exc:
                    raise RpcError.from_remote(exc) from exc
            if scope.cancelled_caught:
                raise _deadline_error(method, invoker.peer)
            return method.decode_response(reply)

        return UnaryCall(run_unary)


class Stub:
    """A client for one service, with the method names of its grpc stub.

    Unary and client-streaming methods return an awaitable :class:`UnaryCall`
    (client streaming takes an iterable or async iterable of requests); server
    streaming and bidirectional ones a :class:`StreamCall`. Every method takes
    ``timeout=`` (seconds) and ``metadata=``. Errors: :class:`RpcError` for a status,
    DEADLINE_EXCEEDED when ``timeout`` passes, :class:`ConnectionClosedError` when the
    peer goes away. Use as ``async with`` (or ``aclose()``) when the stub opened its
    own connection.
    """

    def __init__(self, invoker: Invoker, service: Any, *, owns: bool = False) -> None:
        self._invoker = invoker
        self._spec = ServiceSpec.from_descriptor(service)
        self._owns = owns
        self._methods = {name: _StubMethod(invoker, m) for name, m in self._spec.methods.items()}

    @property
    def service(self) -> ServiceSpec:
        return self._spec

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_methods"][name]
        except KeyError:
            raise AttributeError(
                f"service {self.__dict__['_spec'].full_name} has no method {name}"
            ) from None

    async def aclose(self) -> None:
        if self._owns:
            await self._invoker.aclose()

    async def __aenter__(self) -> Stub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
