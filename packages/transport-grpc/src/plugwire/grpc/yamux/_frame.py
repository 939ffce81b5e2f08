"""Yamux framing: the 12-byte header, its fields and their names.

Every frame starts with ``version:u8 type:u8 flags:u16 stream_id:u32 length:u32``
in network byte order. ``length`` is the payload size for Data frames, a window
delta for WindowUpdate, an opaque value for Ping and an error code for GoAway.
"""

from __future__ import annotations

import enum
import struct

import attrs

from plugwire.core.errors import ProtocolError

__all__ = [
    "HEADER_SIZE",
    "INITIAL_STREAM_WINDOW",
    "PROTOCOL_VERSION",
    "Flag",
    "FrameHeader",
    "FrameType",
    "GoAwayCode",
    "decode_header",
    "encode_header",
]

PROTOCOL_VERSION = 0
HEADER_SIZE = 12
#: Every stream starts with this receive window on both sides (256 KiB).
INITIAL_STREAM_WINDOW = 256 * 1024
MAX_UINT32 = 0xFFFFFFFF

_HEADER = struct.Struct(">BBHII")
pack_header = _HEADER.pack
unpack_header_from = _HEADER.unpack_from


class FrameType(enum.IntEnum):
    """The frame type byte."""

    DATA = 0
    WINDOW_UPDATE = 1
    PING = 2
    GO_AWAY = 3


class Flag(enum.IntFlag):
    """The flag bits: SYN opens a stream (or asks a ping), ACK accepts it (or answers
    the ping), FIN half-closes, RST resets."""

    NONE = 0
    SYN = 0x1
    ACK = 0x2
    FIN = 0x4
    RST = 0x8


class GoAwayCode(enum.IntEnum):
    """The error code a GoAway frame carries in its length field."""

    NORMAL = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


@attrs.frozen
class FrameHeader:
    """One decoded frame header."""

    type: FrameType
    flags: Flag
    stream_id: int
    length: int
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        return encode_header(self.type, self.flags, self.stream_id, self.length, self.version)


def encode_header(
    type: int, flags: int, stream_id: int, length: int, version: int = PROTOCOL_VERSION
) -> bytes:
    """The 12 header bytes for the given fields."""
    return pack_header(version, type, flags, stream_id, length)


def decode_header(data: bytes | bytearray | memoryview, *, peer: str | None = None) -> FrameHeader:
    """Decode the first 12 bytes of ``data``.

    Raises :class:`~plugwire.core.errors.ProtocolError` (naming what was expected and
    what was seen) when the data is short, the version is not 0, or the type unknown.
    """
    if len(data) < HEADER_SIZE:
        raise ProtocolError(
            "yamux frame header truncated",
            peer=peer,
            step="yamux frame",
            expected=f"{HEADER_SIZE} header bytes",
            seen=f"{len(data)} bytes: {bytes(data)!r}",
        )
    version, type_, flags, stream_id, length = unpack_header_from(data)
    check_header(version, type_, bytes(data[:HEADER_SIZE]), peer=peer)
    return FrameHeader(FrameType(type_), Flag(flags), stream_id, length, version)


def check_header(version: int, type_: int, raw: bytes, *, peer: str | None) -> None:
    """Raise :class:`ProtocolError` for a header whose version or type is not yamux's."""
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "not a yamux frame: unknown protocol version",
            peer=peer,
            step="yamux frame",
            expected=f"version {PROTOCOL_VERSION}",
            seen=f"version {version} in header {raw.hex()}",
        )
    if type_ > FrameType.GO_AWAY:
        raise ProtocolError(
            "not a yamux frame: unknown frame type",
            peer=peer,
            step="yamux frame",
            expected="type 0 (data), 1 (window update), 2 (ping) or 3 (go away)",
            seen=f"type {type_} in header {raw.hex()}",
        )
