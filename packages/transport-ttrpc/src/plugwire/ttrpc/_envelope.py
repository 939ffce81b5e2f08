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


_PREFIXES: dict[tuple[str, str], bytes] = {}


def encode_request(
    service: str,
    method: str,
    payload: bytes | None,
    timeout_nano: int = 0,
    metadata: Sequence[tuple[str, str]] = (),
) -> bytes:
    prefix = _PREFIXES.get((service, method))
    if prefix is None:
        prefix = _field(0x0A, service.encode()) + _field(0x12, method.encode())
        if len(_PREFIXES) < 4096:  # method names are few; never grow without bound
            _PREFIXES[(service, method)] = prefix
    if not timeout_nano and not metadata:
        return prefix + _field(0x1A, payload) if payload else prefix
    parts = [prefix]
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


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"{name}: invalid UTF-8") from exc


def _int(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if bits == 32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >= 1 << 31 else value
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_request(buf: bytes) -> Request:
    """Decode a ``ttrpc.Request`` (one pass, no intermediate field list)."""
    service = method = ""
    payload: bytes | None = None
    timeout = 0
    metadata: list[tuple[str, str]] = []
    pos = 0
    end = len(buf)
    try:
        while pos < end:
            key = buf[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _read_varint(buf, pos, end)
            wire = key & 7
            if wire == 2:
                n = buf[pos] if pos < end else 0x80
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = _read_varint(buf, pos, end)
                stop = pos + n
                if stop > end:
                    raise EnvelopeError(f"field {key >> 3}: length {n} past the end")
                if key == 0x0A:
                    service = buf[pos:stop].decode()
                elif key == 0x12:
                    method = buf[pos:stop].decode()
                elif key == 0x1A:
                    payload = buf[pos:stop]
                elif key == 0x2A:
                    k = v = ""
                    for n2, _w2, v2 in _fields(buf, pos, stop):
                        if isinstance(v2, bytes):
                            if n2 == 1:
                                k = _text(v2, "metadata.key")
                            elif n2 == 2:
                                v = _text(v2, "metadata.value")
                    metadata.append((k, v))
                elif key >> 3 == 0:
                    raise EnvelopeError("field number 0")
                pos = stop
            elif wire == 0:
                value, pos = _read_varint(buf, pos, end)
                if key == 0x20:
                    timeout = _int(value, 64)
                elif key >> 3 == 0:
                    raise EnvelopeError("field number 0")
            elif wire == 1 or wire == 5:
                if key >> 3 == 0:
                    raise EnvelopeError("field number 0")
                pos += 8 if wire == 1 else 4
                if pos > end:
                    raise EnvelopeError(
                        f"field {key >> 3}: truncated fixed{64 if wire == 1 else 32}"
                    )
            else:
                raise EnvelopeError(f"field {key >> 3}: unsupported wire type {wire}")
    except UnicodeDecodeError as exc:
        raise EnvelopeError("service/method: invalid UTF-8") from exc
    return Request(service, method, payload, timeout, metadata)


def decode_status(buf: bytes) -> Status:
    code = 0
    message = ""
    details: list[bytes] = []
    for number, _wire, value in _fields(buf, 0, len(buf)):
        if isinstance(value, bytes):
            if number == 2:
                message = _text(value, "status.message")
            elif number == 3:
                details.append(value)
        elif number == 1:
            code = _int(value, 32)
    return Status(code, message, details)


_OK = Status()


def decode_response(buf: bytes) -> tuple[Status, bytes]:
    """(status, payload) of a ``ttrpc.Response``; a missing status means OK."""
    if buf[:2] == _OK_STATUS_FIELD:
        # fast path: OK status first, then at most the payload (as Go and we send it)
        end = len(buf)
        if end == 2:
            return _OK, b""
        if buf[2] == 0x12 and end > 3:
            n = buf[3]
            pos = 4
            if n >= 0x80:
                try:
                    n, pos = _read_varint(buf, 3, end)
                except EnvelopeError:
                    n = -1
            if pos + n == end:
                return _OK, buf[pos:]
    status = _OK
    payload = b""
    for number, _wire, value in _fields(buf, 0, len(buf)):
        if isinstance(value, bytes):
            if number == 1:
                status = decode_status(value)
            elif number == 2:
                payload = value
    return status, payload
