"""The read side of a yamux session: the reader task and frame dispatch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from plugwire.core.errors import ConnectionClosedError, ProtocolError

from ._config import YamuxConfig
from ._errors import RemoteGoAwayError
from ._frame import (
    HEADER_SIZE,
    PROTOCOL_VERSION,
    Flag,
    FrameType,
    GoAwayCode,
    check_header,
    encode_header,
    unpack_header_from,
)
from ._stream import YamuxStream

__all__ = ["SessionReader"]

logger = logging.getLogger("plugwire.grpc.yamux")

_RECV_SIZE = 256 * 1024
_DATA = int(FrameType.DATA)
_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)
_PING = int(FrameType.PING)
_GO_AWAY = int(FrameType.GO_AWAY)


class _PeerEOF(Exception):
    def __init__(self, mid_frame: bool) -> None:
        super().__init__()
        self.mid_frame = mid_frame


class SessionReader:
    """Mixin of :class:`~._session.Session`: the reader task, which parses frames and
    dispatches them to streams (data, window updates, SYN/ACK/FIN/RST), pings and
    GoAway."""

    _transport: anyio.abc.ByteStream
    _config: YamuxConfig
    _name: str | None
    _closed: bool
    _remote_go_away: bool
    _streams: dict[int, YamuxStream]
    _pings: dict[int, anyio.Event]
    _reader_scope: anyio.CancelScope
    _reader_done: anyio.Event

    if TYPE_CHECKING:

        def _begin_shutdown(
            self, error: BaseException | None, *, go_away: GoAwayCode | None
        ) -> None: ...

        def _enqueue_quiet(self, part: bytes) -> None: ...

        def _wake_openers(self) -> None: ...

        def _incoming(self, stream_id: int) -> YamuxStream | None: ...

    async def _run_reader(self) -> None:
        try:
            await self._run_reader_loop()
        finally:
            self._reader_done.set()

    async def _run_reader_loop(self) -> None:
        with self._reader_scope:
            try:
                await self._read_loop()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                if self._closed:
                    return  # the writer closed the transport: the session is over
                self._begin_shutdown(
                    ConnectionClosedError(
                        "connection lost while reading",
                        peer=self._name,
                        step="yamux read",
                        seen=exc,
                    ),
                    go_away=None,
                )
            except ProtocolError as exc:
                logger.warning("yamux: %s", exc)
                self._begin_shutdown(exc, go_away=GoAwayCode.PROTOCOL_ERROR)
            except RemoteGoAwayError as exc:
                self._begin_shutdown(exc, go_away=None)
            except _PeerEOF as exc:
                message = "peer closed the connection"
                if exc.mid_frame:
                    message += " in the middle of a frame"
                self._begin_shutdown(
                    ConnectionClosedError(message, peer=self._name, step="yamux read"),
                    go_away=None,
                )
            except Exception as exc:  # a bug: keep the host alive, end the session
                logger.exception("yamux reader failed")
                self._begin_shutdown(exc, go_away=GoAwayCode.INTERNAL_ERROR)

    async def _read_loop(self) -> None:
        transport = self._transport
        buf = bytearray()
        pos = 0
        max_frame = self._config.max_stream_window_size
        while not self._closed:
            if len(buf) - pos < HEADER_SIZE:
                if pos:
                    del buf[:pos]
                    pos = 0
                try:
                    buf += await transport.receive(_RECV_SIZE)
                except anyio.EndOfStream:
                    raise _PeerEOF(mid_frame=bool(buf)) from None
                continue
            version, type_, flags, stream_id, length = unpack_header_from(buf, pos)
            if version != PROTOCOL_VERSION or type_ > _GO_AWAY:
                check_header(version, type_, bytes(buf[pos : pos + HEADER_SIZE]), peer=self._name)
            pos += HEADER_SIZE
            if type_ == _DATA:
                payload = b""
                if length:
                    if length > max_frame:
                        raise ProtocolError(
                            "yamux data frame larger than any window this side grants",
                            peer=self._name,
                            step=f"yamux stream {stream_id}",
                            expected=f"<= {max_frame} bytes",
                            seen=f"a {length}-byte data frame",
                        )
                    while len(buf) - pos < length:
                        if self._closed:
                            return
                        if pos:
                            del buf[:pos]
                            pos = 0
                        try:
                            buf += await transport.receive(max(_RECV_SIZE, length - len(buf)))
                        except anyio.EndOfStream:
                            raise _PeerEOF(mid_frame=True) from None
                    with memoryview(buf) as view, view[pos : pos + length] as part:
                        payload = part.tobytes()
                    pos += length
                self._on_stream_frame(type_, flags, stream_id, length, payload)
            elif type_ == _WINDOW_UPDATE:
                self._on_stream_frame(type_, flags, stream_id, length, b"")
            elif type_ == _PING:
                self._on_ping(flags, length)
            else:
                self._on_go_away(length)

    def _on_stream_frame(
        self, type_: int, flags: int, stream_id: int, length: int, payload: bytes
    ) -> None:
        stream: YamuxStream | None
        if flags & Flag.SYN:
            stream = self._incoming(stream_id)
        else:
            stream = self._streams.get(stream_id)
            if stream is None and logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "yamux: frame type %d for unknown stream %d (%d bytes) ignored",
                    type_,
                    stream_id,
                    length,
                )
        if stream is None:
            return
        stream._process_flags(flags)
        if type_ == _WINDOW_UPDATE:
            if length:
                stream._on_window_update(length)
        elif payload:
            stream._on_data(payload)

    def _on_ping(self, flags: int, ping_id: int) -> None:
        if flags & Flag.SYN:
            self._enqueue_quiet(encode_header(_PING, Flag.ACK, 0, ping_id))
            return
        event = self._pings.pop(ping_id, None)
        if event is not None:
            event.set()

    def _on_go_away(self, code: int) -> None:
        if code == GoAwayCode.NORMAL:
            self._remote_go_away = True
            self._wake_openers()
            return
        raise RemoteGoAwayError(
            "the peer ended the yamux session with an error GoAway", code=code, peer=self._name
        )
