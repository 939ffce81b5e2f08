"""The ttrpc envelope messages, encoded by hand (no descriptor-pool registration).

``ttrpc.Request{service=1, method=2, payload=3, timeout_nano=4, metadata=5}``,
``ttrpc.KeyValue{key=1, value=2}``, ``ttrpc.Response{status=1, payload=2}`` and
``google.rpc.Status{code=1, message=2, details=3 (google.protobuf.Any)}``.

Hand-written so that plugwire.ttrpc does not register ``google/rpc/status.proto``
in the default descriptor pool (which would clash with googleapis-common-protos)
and because these four messages are on the hot path. Decoding skips unknown
fields and raises :class:`EnvelopeError` on malformed input; it never raises
anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "EnvelopeError",
    "Request",
    "Status",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]


class EnvelopeError(ValueError):
    """Malformed protobuf bytes in a ttrpc envelope."""


class Request:
    """A decoded ``ttrpc.Request``. ``payload`` is None when the field was absent."""

    __slots__ = ("metadata", "method", "payload", "service", "timeout_nano")

    def __init__(
        self,
        service: str = "",
        method: str = "",
        payload: bytes | None = None,
        timeout_nano: int = 0,
        metadata: list[tuple[str, str]] | None = None,
    ) -> None:
        self.service = service
        self.method = method
        self.payload = payload
        self.timeout_nano = timeout_nano
        self.metadata = metadata if metadata is not None else []


class Status:
    """A decoded ``google.rpc.Status``; ``details`` holds each encoded ``Any``."""

    __slots__ = ("code", "details", "message")

    def __init__(self, code: int = 0, message: str = "", details: Sequence[bytes] = ()) -> None:
        self.code = code
        self.message = message
        self.details = tuple(details)


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, data: bytes) -> bytes:
    """A length-delimited field (``tag`` already includes wire type 2)."""
    n = len(data)
    if n < 0x80:
        return bytes((tag, n)) + data
    return bytes((tag,)) + _varint(n) + data


def encode_request(
    service: str,
    method: str,
    payload: bytes | None,
    timeout_nano: int = 0,
    metadata: Sequence[tuple[str, str]] = (),
) -> bytes:
    parts = [_field(0x0A, service.encode()), _field(0x12, method.encode())]
    if payload:
        parts.append(_field(0x1A, payload))
    if timeout_nano:
        parts.append(b"\x20" + _varint(timeout_nano))
    for key, value in metadata:
        parts.append(_field(0x2A, _field(0x0A, key.encode()) + _field(0x12, value.encode())))
    return b"".join(parts)


def encode_status(code: int, message: str = "", details: Sequence[bytes] = ()) -> bytes:
    parts = []
    if code:
        parts.append(b"\x08" + _varint(code))
    if message:
        parts.append(_field(0x12, message.encode()))
    for d in details:
        parts.append(_field(0x1A, d))
    return b"".join(parts)


_OK_STATUS_FIELD = _field(0x0A, b"")


def encode_response(
    payload: bytes | None, code: int = 0, message: str = "", details: Sequence[bytes] = ()
) -> bytes:
    """``Response{status, payload}``; the status is always present (as Go sends it)."""
    if code == 0 and not message and not details:
        head = _OK_STATUS_FIELD
    else:
        head = _field(0x0A, encode_status(code, message, details))
    if payload:
        return head + _field(0x12, payload)
    return head


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise EnvelopeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise EnvelopeError("varint too long")


def _fields(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field in ``buf[pos:end]``."""
    out: list[tuple[int, int, int | bytes]] = []
    while pos < end:
        b = buf[pos]
        if b < 0x80:
            key = b
            pos += 1
        else:
            key, pos = _read_varint(buf, pos, end)
        number = key >> 3
        wire = key & 7
        if number == 0:
            raise EnvelopeError("field number 0")
        if wire == 2:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _read_varint(buf, pos, end)
            stop = pos + n
            if stop > end:
                raise EnvelopeError(f"field {number}: length {n} past the end")
            out.append((number, 2, buf[pos:stop]))
            pos = stop
        elif wire == 0:
            value, pos = _read_varint(buf, pos, end)
            out.append((number, 0, value))
        elif wire == 1:
            pos += 8
            if pos > end:
                raise EnvelopeError(f"field {number}: truncated fixed64")
        elif wire == 5:
            pos += 4
            if pos > end:
                raise EnvelopeError(f"field {number}: truncated fixed32")
        else:
            raise EnvelopeError(f"field {number}: unsupported wire type {wire}")
    return out


def _text(value: int | bytes, name: str) -> str:
    if not isinstance(value, bytes):
        raise EnvelopeError(f"{name}: expected a string, got a varint")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"{name}: invalid UTF-8") from exc


def _blob(value: int | bytes, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise EnvelopeError(f"{name}: expected bytes, got a varint")
    return value


def _int(value: int | bytes, name: str, bits: int) -> int:
    if isinstance(value, bytes):
        raise EnvelopeError(f"{name}: expected a varint")
    value &= (1 << 64) - 1
    if bits == 32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >= 1 << 31 else value
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_request(buf: bytes) -> Request:
    req = Request()
    for number, _wire, value in _fields(buf, 0, len(buf)):
        if number == 1:
            req.service = _text(value, "service")
        elif number == 2:
            req.method = _text(value, "method")
        elif number == 3:
            req.payload = _blob(value, "payload")
        elif number == 4:
            req.timeout_nano = _int(value, "timeout_nano", 64)
        elif number == 5:
            kv = _blob(value, "metadata")
            key = val = ""
            for n2, _w2, v2 in _fields(kv, 0, len(kv)):
                if n2 == 1:
                    key = _text(v2, "metadata.key")
                elif n2 == 2:
                    val = _text(v2, "metadata.value")
            req.metadata.append((key, val))
    return req


def decode_status(buf: bytes) -> Status:
    code = 0
    message = ""
    details: list[bytes] = []
    for number, _wire, value in _fields(buf, 0, len(buf)):
        if number == 1:
            code = _int(value, "status.code", 32)
        elif number == 2:
            message = _text(value, "status.message")
        elif number == 3:
            details.append(_blob(value, "status.details"))
    return Status(code, message, details)


_OK = Status()


def decode_response(buf: bytes) -> tuple[Status, bytes]:
    """(status, payload) of a ``ttrpc.Response``; a missing status means OK."""
    if buf == _OK_STATUS_FIELD:
        return _OK, b""
    status = _OK
    payload = b""
    for number, _wire, value in _fields(buf, 0, len(buf)):
        if number == 1:
            status = decode_status(_blob(value, "status"))
        elif number == 2:
            payload = _blob(value, "payload")
    return status, payload
