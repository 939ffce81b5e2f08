"""The ttrpc frame: a 10-byte big-endian header and its data.

``u32 length | u32 stream id | u8 type | u8 flags`` followed by ``length`` bytes.
:class:`FrameDecoder` is an incremental, sans-IO parser: feed it whatever the
socket produced and it returns the complete frames. A frame whose announced length
exceeds the limit is *discarded* (its bytes are skipped as they arrive) and reported
as an oversized frame, exactly like the Go implementation, so the connection lives.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

__all__ = [
    "FLAG_NO_DATA",
    "FLAG_REMOTE_CLOSED",
    "FLAG_REMOTE_OPEN",
    "HEADER_LENGTH",
    "MAX_MESSAGE_SIZE",
    "TYPE_DATA",
    "TYPE_REQUEST",
    "TYPE_RESPONSE",
    "Frame",
    "FrameDecoder",
    "encode_frame",
]

HEADER_LENGTH: Final = 10
#: The default (and upstream) data size limit: 4 MiB.
MAX_MESSAGE_SIZE: Final = 4 << 20

TYPE_REQUEST: Final = 0x1
TYPE_RESPONSE: Final = 0x2
TYPE_DATA: Final = 0x3

FLAG_REMOTE_CLOSED: Final = 0x1
FLAG_REMOTE_OPEN: Final = 0x2
FLAG_NO_DATA: Final = 0x4

_HEADER = struct.Struct(">IIBB")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from

TYPE_NAMES: Final = {TYPE_REQUEST: "request", TYPE_RESPONSE: "response", TYPE_DATA: "data"}


class Frame(NamedTuple):
    """One received frame. ``oversized`` is the announced length of a frame that
    was discarded because it exceeded the limit (``data`` is then empty), else 0."""

    stream_id: int
    type: int
    flags: int
    data: bytes
    oversized: int = 0


def encode_frame(stream_id: int, type_: int, flags: int, data: bytes) -> bytes:
    """Header plus data. The caller enforces the size limit."""
    return _pack_header(len(data), stream_id, type_, flags) + data


class FrameDecoder:
    """Incremental frame parser.

    ``feed(chunk)`` returns the frames completed by ``chunk`` (possibly none). It
    never raises on any input: a truncated frame simply waits for more bytes, and
    an oversized one is skipped and reported with ``Frame.oversized`` set.
    ``pending`` tells how many bytes of an incomplete frame are buffered (non-zero
    at end of stream means the peer sent a truncated frame).
    """

    __slots__ = ("_buf", "_chunks", "_discard", "_have", "_need", "max_size")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buf = b""
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._discard = 0

    @property
    def pending(self) -> int:
        return len(self._buf) + self._have

    def feed(self, chunk: bytes) -> list[Frame]:
        if self._discard:
            n = len(chunk)
            if n <= self._discard:
                self._discard -= n
                return []
            chunk = chunk[self._discard :]
            self._discard = 0
        if self._chunks:
            self._chunks.append(chunk)
            self._have += len(chunk)
            if self._have < self._need:
                return []
            data = b"".join(self._chunks)
            self._chunks = []
            self._have = 0
        elif self._buf:
            data = self._buf + chunk
        else:
            data = chunk
        frames: list[Frame] = []
        append = frames.append
        pos = 0
        end = len(data)
        max_size = self.max_size
        while end - pos >= HEADER_LENGTH:
            length, sid, typ, flags = _unpack_header(data, pos)
            start = pos + HEADER_LENGTH
            if length > max_size:
                append(Frame(sid, typ, flags, b"", length))
                available = end - start
                if available >= length:
                    pos = start + length
                    continue
                self._discard = length - available
                self._buf = b""
                return frames
            stop = start + length
            if stop > end:
                break
            append(Frame(sid, typ, flags, data[start:stop]))
            pos = stop
        rest = end - pos
        if rest == 0:
            self._buf = b""
        elif rest >= HEADER_LENGTH:
            # Header known, body incomplete: gather chunks until the frame is whole.
            length = _unpack_header(data, pos)[0]
            self._buf = b""
            self._chunks = [data[pos:]]
            self._have = rest
            self._need = HEADER_LENGTH + length
        else:
            self._buf = data[pos:]
        return frames
