"""A minimal unary ttrpc client and server over one anyio byte stream.

Internal stop-gap: NRI needs a ttrpc client and a server on each of its two mux
conns; this module speaks exactly the unary subset of the containerd/ttrpc wire that
NRI uses, until ``plugwire.ttrpc``'s general client and server can take its place.

Wire (containerd/ttrpc ``channel.go``): a 10-byte big-endian header ``u32 length,
u32 stream id, u8 type, u8 flags`` then ``length`` bytes. Type 1 is a Request
(``service=1, method=2, payload=3, timeout_nano=4, metadata=5``), type 2 a Response
(``google.rpc.Status status=1, payload=2``). Client stream ids are odd, from 1, +2.
Messages above 4 MiB are refused by the sender and discarded by the receiver, which
fails only that stream with ResourceExhausted.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Awaitable, Callable, Mapping

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from plugwire.core.errors import (
    ConnectionClosedError,
    MessageTooLargeError,
    PluginTimeoutError,
    PlugwireError,
    ProtocolError,
    RemoteError,
)

__all__ = ["MESSAGE_LENGTH_MAX", "Handler", "RpcClient", "RpcServer"]

log = logging.getLogger("plugwire.ttrpc.nri")

MESSAGE_LENGTH_MAX = 4 << 20
_HEADER = struct.Struct(">IIBB")
_REQUEST = 1
_RESPONSE = 2

UNKNOWN = 2
DEADLINE_EXCEEDED = 4
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12

#: A unary method: request payload in, response payload out. Raise
#: :class:`~plugwire.core.errors.RemoteError` to answer with a specific status code.
Handler = Callable[[bytes], Awaitable[bytes]]


# -- a tiny protobuf codec for the three envelope messages ------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _parse(data: bytes) -> dict[int, list[int | bytes]]:
    fields: dict[int, list[int | bytes]] = {}
    pos, end = 0, len(data)

    def read_varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < end:
        key = read_varint()
        num, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            size = read_varint()
            if pos + size > end:
                raise ValueError("truncated field")
            value = data[pos : pos + size]
            pos += size
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(num, []).append(value)
    return fields


def _first_bytes(fields: dict[int, list[int | bytes]], num: int) -> bytes:
    for value in fields.get(num, ()):
        if isinstance(value, bytes):
            return value
    return b""


def _first_int(fields: dict[int, list[int | bytes]], num: int) -> int:
    for value in fields.get(num, ()):
        if isinstance(value, int):
            return value
    return 0


def encode_request(service: str, method: str, payload: bytes, timeout_nano: int = 0) -> bytes:
    out = _field_bytes(1, service.encode()) + _field_bytes(2, method.encode())
    if payload:
        out += _field_bytes(3, payload)
    if timeout_nano:
        out += _field_varint(4, timeout_nano)
    return out


def decode_request(data: bytes) -> tuple[str, str, bytes, int]:
    fields = _parse(data)
    return (
        _first_bytes(fields, 1).decode(),
        _first_bytes(fields, 2).decode(),
        _first_bytes(fields, 3),
        _first_int(fields, 4),
    )


def encode_response(payload: bytes, code: int = 0, message: str = "") -> bytes:
    out = b""
    if code:
        status = _field_varint(1, code)
        if message:
            status += _field_bytes(2, message.encode())
        out += _field_bytes(1, status)
    if payload:
        out += _field_bytes(2, payload)
    return out


def decode_response(data: bytes) -> tuple[int, str, bytes]:
    fields = _parse(data)
    status = _parse(_first_bytes(fields, 1))
    code = _first_int(status, 1)
    if code >= 1 << 31:
        code -= 1 << 64
    return code, _first_bytes(status, 2).decode(errors="replace"), _first_bytes(fields, 2)


# -- framing ----------------------------------------------------------------------


class _Framer:
    def __init__(self, stream: anyio.abc.ByteStream, peer: str | None) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)
        self.lock = anyio.Lock()
        self.peer = peer

    async def send(self, stream_id: int, kind: int, data: bytes) -> None:
        # Header and payload go out as separate writes: the NRI mux frames them
        # separately, so no frame mixes a ttrpc header with a large payload.
        async with self.lock:
            await self.stream.send(_HEADER.pack(len(data), stream_id, kind, 0))
            if data:
                await self.stream.send(data)

    async def receive(self) -> tuple[int, int, bytes | None, int]:
        """(stream id, type, data or None when oversized and discarded, length)."""
        length, stream_id, kind, _flags = _HEADER.unpack(
            await self.reader.receive_exactly(_HEADER.size)
        )
        if length > MESSAGE_LENGTH_MAX:
            remaining = length
            while remaining:
                chunk = await self.reader.receive(min(remaining, 65536))
                remaining -= len(chunk)
            return stream_id, kind, None, length
        data = await self.reader.receive_exactly(length) if length else b""
        return stream_id, kind, data, length


_END = (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError)
_BROKEN = (anyio.BrokenResourceError, OSError, PlugwireError)


class _Call:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: bytes | BaseException | None = None

    def settle(self, result: bytes | BaseException) -> None:
        if not self.event.is_set():
            self.result = result
            self.event.set()


class RpcClient:
    """Unary ttrpc calls over ``stream``; run :meth:`run` in a task group first.

    :meth:`call` raises :class:`RemoteError` (the server's status),
    :class:`PluginTimeoutError` (no answer within ``timeout``),
    :class:`MessageTooLargeError` (request or response above 4 MiB) or
    :class:`ConnectionClosedError` (the stream ended; ``closed`` is then set).
    """

    def __init__(self, stream: anyio.abc.ByteStream, *, peer: str | None = None) -> None:
        self._framer = _Framer(stream, peer)
        self._calls: dict[int, _Call] = {}
        self._next_id = 1
        self.peer = peer
        self.closed = anyio.Event()
        self.close_reason: BaseException | None = None

    async def run(self) -> None:
        """Read responses until the stream ends, then fail every pending call."""
        reason: BaseException = ConnectionClosedError(
            "connection closed", peer=self.peer, step="ttrpc read"
        )
        try:
            while True:
                stream_id, kind, data, length = await self._framer.receive()
                call = self._calls.get(stream_id)
                if kind != _RESPONSE or call is None:
                    continue
                if data is None:
                    call.settle(
                        MessageTooLargeError(
                            "response exceeds the ttrpc maximum message size",
                            size=length,
                            limit=MESSAGE_LENGTH_MAX,
                            peer=self.peer,
                            step="ttrpc response",
                        )
                    )
                    continue
                try:
                    code, message, payload = decode_response(data)
                except ValueError as exc:
                    call.settle(
                        ProtocolError(
                            "malformed ttrpc response",
                            peer=self.peer,
                            step="ttrpc response",
                            seen=str(exc),
                        )
                    )
                    continue
                if code:
                    call.settle(RemoteError(message, code=code, peer=self.peer))
                else:
                    call.settle(payload)
        except _END:
            pass
        except _BROKEN as exc:
            reason = ConnectionClosedError(
                "connection broke", peer=self.peer, step="ttrpc read", seen=repr(exc)
            )
        finally:
            self.close_reason = reason
            self.closed.set()
            for call in list(self._calls.values()):
                call.settle(reason)

    async def call(
        self, service: str, method: str, payload: bytes, *, timeout: float | None = None
    ) -> bytes:
        step = f"/{service}/{method}"
        if self.closed.is_set():
            raise ConnectionClosedError("connection closed", peer=self.peer, step=step)
        timeout_nano = 0 if timeout is None or math.isinf(timeout) else int(timeout * 1e9)
        data = encode_request(service, method, payload, timeout_nano)
        if len(data) > MESSAGE_LENGTH_MAX:
            raise MessageTooLargeError(
                "request exceeds the ttrpc maximum message size",
                size=len(data),
                limit=MESSAGE_LENGTH_MAX,
                peer=self.peer,
                step=step,
            )
        stream_id = self._next_id
        self._next_id += 2
        call = self._calls[stream_id] = _Call()
        try:
            with anyio.fail_after(timeout if timeout is not None else math.inf):
                try:
                    await self._framer.send(stream_id, _REQUEST, data)
                except (*_END, *_BROKEN) as exc:
                    raise ConnectionClosedError(
                        "connection closed", peer=self.peer, step=step, seen=repr(exc)
                    ) from exc
                await call.event.wait()
        except TimeoutError:
            raise PluginTimeoutError(
                f"no reply within {timeout} s",
                peer=self.peer,
                step=step,
                expected=f"a reply within {timeout} s",
            ) from None
        finally:
            del self._calls[stream_id]
        result = call.result
        if isinstance(result, BaseException):
            if isinstance(result, PlugwireError) and result.step is None:
                result.step = step
            raise result
        assert result is not None
        return result


class RpcServer:
    """Serve unary ttrpc ``handlers`` (keyed by ``(service, method)``) on ``stream``.

    Each request runs in its own task; a handler error becomes the response status
    (:class:`RemoteError` keeps its code, anything else is ``UNKNOWN``), an unknown
    method answers ``UNIMPLEMENTED``, an oversized request ``RESOURCE_EXHAUSTED``.
    :meth:`serve` returns when the stream ends.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        handlers: Mapping[tuple[str, str], Handler],
        *,
        peer: str | None = None,
    ) -> None:
        self._framer = _Framer(stream, peer)
        self._handlers = dict(handlers)
        self.peer = peer

    async def serve(self) -> None:
        async with anyio.create_task_group() as tg:
            try:
                while True:
                    stream_id, kind, data, length = await self._framer.receive()
                    if kind != _REQUEST:
                        continue
                    if data is None:
                        tg.start_soon(
                            self._respond,
                            stream_id,
                            b"",
                            RESOURCE_EXHAUSTED,
                            f"message length {length} exceed maximum message size of "
                            f"{MESSAGE_LENGTH_MAX}",
                        )
                        continue
                    tg.start_soon(self._dispatch, stream_id, data)
            except (*_END, *_BROKEN):
                pass
            tg.cancel_scope.cancel()

    async def _respond(self, stream_id: int, payload: bytes, code: int, message: str) -> None:
        data = encode_response(payload, code, message)
        if len(data) > MESSAGE_LENGTH_MAX:
            data = encode_response(
                b"",
                RESOURCE_EXHAUSTED,
                f"message length {len(data)} exceed maximum message size of {MESSAGE_LENGTH_MAX}",
            )
        try:
            await self._framer.send(stream_id, _RESPONSE, data)
        except (*_END, *_BROKEN):
            pass

    async def _dispatch(self, stream_id: int, data: bytes) -> None:
        try:
            service, method, payload, timeout_nano = decode_request(data)
        except ValueError as exc:
            await self._respond(stream_id, b"", UNKNOWN, f"malformed request: {exc}")
            return
        handler = self._handlers.get((service, method))
        if handler is None:
            known = {s for s, _ in self._handlers}
            text = f"method {method}" if service in known else f"service {service}"
            await self._respond(stream_id, b"", UNIMPLEMENTED, text)
            return
        timeout = timeout_nano / 1e9 if timeout_nano > 0 else math.inf
        try:
            with anyio.fail_after(timeout):
                result = await handler(payload)
        except TimeoutError:
            await self._respond(stream_id, b"", DEADLINE_EXCEEDED, "context deadline exceeded")
        except RemoteError as exc:
            await self._respond(stream_id, b"", exc.code, exc.message)
        except Exception as exc:
            log.debug("handler /%s/%s failed", service, method, exc_info=True)
            await self._respond(stream_id, b"", UNKNOWN, str(exc) or type(exc).__name__)
        else:
            await self._respond(stream_id, result, 0, "")
