"""A yamux session: many :class:`YamuxStream` over one reliable byte stream."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from plugwire.core.errors import ClosedError, ConnectionClosedError, ProtocolError

from ._config import YamuxConfig
from ._errors import (
    RemoteGoAwayError,
    SessionClosedError,
    StreamsExhaustedError,
    YamuxTimeoutError,
)
from ._frame import (
    HEADER_SIZE,
    INITIAL_STREAM_WINDOW,
    MAX_UINT32,
    PROTOCOL_VERSION,
    Flag,
    FrameType,
    GoAwayCode,
    check_header,
    encode_header,
    unpack_header_from,
)
from ._sockets import shutdown_socket
from ._stream import StreamState, YamuxStream

__all__ = ["Session", "client", "server"]

logger = logging.getLogger("plugwire.grpc.yamux")

_RECV_SIZE = 256 * 1024
_WRITE_BATCH = 512 * 1024
_NO_COPY_SIZE = 64 * 1024
_DATA = int(FrameType.DATA)
_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)
_PING = int(FrameType.PING)
_GO_AWAY = int(FrameType.GO_AWAY)


class _PeerEOF(Exception):
    def __init__(self, mid_frame: bool) -> None:
        super().__init__()
        self.mid_frame = mid_frame


class Session:
    """A yamux session over ``transport`` (any :class:`anyio.abc.ByteStream`: a TCP or
    unix socket, a TLS stream, a pipe pair).

    Use it as an async context manager; it runs a reader, a writer and (if enabled) a
    keepalive task until it is closed, and closes ``transport`` when it ends::

        async with yamux.client(await anyio.connect_unix(path)) as session:
            stream = await session.open_stream()
            await stream.send(b"hello")

    The client side opens odd stream ids, the server side even ones; a peer opening
    an id of the wrong parity (for instance both ends configured as clients) is a
    :class:`~plugwire.core.errors.ProtocolError`.

    The session ends on :meth:`aclose` (a GoAway NORMAL is sent first), when the peer
    closes the connection or sends an error GoAway, on a malformed frame (a GoAway
    PROTOCOL_ERROR is sent and :attr:`error` is the :class:`ProtocolError`), when a
    write or a keepalive ping times out, or when an opened stream is not acknowledged
    within ``stream_open_timeout``. Every stream operation then fails with
    :class:`SessionClosedError` whose ``cause`` is :attr:`error` (bytes already
    received can still be read, and a stream the peer had finished ends with EOF).
    """

    def __init__(
        self,
        transport: anyio.abc.ByteStream,
        *,
        client: bool,
        config: YamuxConfig | None = None,
        name: str | None = None,
    ) -> None:
        self._transport = transport
        self._client = client
        self._config = config or YamuxConfig()
        self._name = name
        self._initial_window = INITIAL_STREAM_WINDOW
        self._next_id = 1 if client else 2
        self._streams: dict[int, YamuxStream] = {}
        self._inflight_count = 0
        self._open_waiter_event: anyio.Event | None = None
        self._accept_tx: MemoryObjectSendStream[YamuxStream]
        self._accept_rx: MemoryObjectReceiveStream[YamuxStream]
        self._accept_tx, self._accept_rx = anyio.create_memory_object_stream[YamuxStream](
            self._config.accept_backlog
        )
        self._send_tx: MemoryObjectSendStream[bytes]
        self._send_rx: MemoryObjectReceiveStream[bytes]
        self._send_tx, self._send_rx = anyio.create_memory_object_stream[bytes](math.inf)
        self._pings: dict[int, anyio.Event] = {}
        self._ping_id = 0
        self._local_go_away = False
        self._remote_go_away = False
        self._closed = False
        self._error: BaseException | None = None
        self._closed_event = anyio.Event()
        self._writer_done = anyio.Event()
        self._pending = 0  # frame parts queued for the writer task and not yet written
        self._writing = False  # a write to the transport is in progress
        self._write_idle: anyio.Event | None = None
        self._reader_scope = anyio.CancelScope()
        self._reader_done = anyio.Event()
        self._writer_scope = anyio.CancelScope()
        self._keepalive_scope = anyio.CancelScope()
        self._tg: anyio.abc.TaskGroup | None = None
        self._started = False

    # -- properties -----------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The peer name used in error messages."""
        return self._name

    @property
    def is_client(self) -> bool:
        return self._client

    @property
    def config(self) -> YamuxConfig:
        return self._config

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """Why the session ended (``None`` while open or after a local close)."""
        return self._error

    @property
    def num_streams(self) -> int:
        """Streams still registered (open, half-closed, or waiting to be accepted)."""
        return len(self._streams)

    @property
    def local_go_away(self) -> bool:
        return self._local_go_away

    @property
    def remote_go_away(self) -> bool:
        """The peer sent GoAway NORMAL: :meth:`open_stream` now fails."""
        return self._remote_go_away

    def __repr__(self) -> str:
        role = "client" if self._client else "server"
        state = "closed" if self._closed else "open"
        return f"<yamux.Session {role} {state} streams={len(self._streams)}>"

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Session:
        if self._started:
            raise ClosedError("a yamux session can be entered only once", peer=self._name)
        self._started = True
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._run_reader, name="yamux reader")
        tg.start_soon(self._run_writer, name="yamux writer")
        if self._config.enable_keepalive:
            tg.start_soon(self._run_keepalive, name="yamux keepalive")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            assert self._tg is not None
            # The background tasks have ended or are ending: wait for them without
            # feeding the body's exception to the task group (which would wrap it
            # in an ExceptionGroup).
            await self._tg.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Close the session: send GoAway NORMAL, flush what is queued (bounded by
        ``connection_write_timeout``), close the transport and fail every stream
        with :class:`SessionClosedError`. Idempotent."""
        self._begin_shutdown(None, go_away=GoAwayCode.NORMAL)
        if not self._started:
            await anyio.aclose_forcefully(self._transport)
            self._writer_done.set()
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._config.connection_write_timeout):
                await self._writer_done.wait()
            if not self._writer_done.is_set():
                self._writer_scope.cancel()
                await self._writer_done.wait()
            # The transport is closed: the reader ends by itself unless the transport
            # does not wake a pending receive on close.
            with anyio.move_on_after(1):
                await self._reader_done.wait()
            if not self._reader_done.is_set():
                self._reader_scope.cancel()
                await self._reader_done.wait()

    async def wait_closed(self) -> None:
        """Wait until the session has ended (for any reason)."""
        await self._closed_event.wait()

    # -- streams --------------------------------------------------------------

    async def open_stream(self) -> YamuxStream:
        """Open a new stream. The SYN goes out at once and data may follow before the
        peer acknowledges. Waits while ``accept_backlog`` opened streams are still
        unacknowledged. Raises :class:`SessionClosedError`, :class:`RemoteGoAwayError`
        (the peer sent GoAway) or :class:`StreamsExhaustedError`."""
        await anyio.lowlevel.checkpoint()
        self._require_started()
        while True:
            if self._closed:
                raise self._closed_exception()
            if self._remote_go_away:
                raise RemoteGoAwayError(
                    "the peer sent GoAway: it accepts no new streams",
                    code=GoAwayCode.NORMAL,
                    peer=self._name,
                )
            if self._inflight_count < self._config.accept_backlog:
                break
            if self._open_waiter_event is None:
                self._open_waiter_event = anyio.Event()
            await self._open_waiter_event.wait()
        stream_id = self._next_id
        if stream_id >= MAX_UINT32 - 1:
            raise StreamsExhaustedError(
                "no yamux stream ids left on this session", peer=self._name, seen=stream_id
            )
        self._next_id = stream_id + 2
        stream = YamuxStream(self, stream_id, StreamState.INIT)
        stream._pending_flags = Flag.SYN
        stream._inflight = True
        self._inflight_count += 1
        self._streams[stream_id] = stream
        stream._send_window_update()  # carries SYN (and a window above 256 KiB if set)
        if self._config.stream_open_timeout > 0:
            assert self._tg is not None
            self._tg.start_soon(self._open_timer, stream)
        return stream

    async def accept_stream(self) -> YamuxStream:
        """Wait for the next stream the peer opened and acknowledge it (ACK).
        Raises :class:`SessionClosedError` once the session has ended."""
        self._require_started()
        if self._closed:
            await anyio.lowlevel.checkpoint()
            raise self._closed_exception()
        try:
            stream = await self._accept_rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._closed_exception() from None
        if not self._closed and stream._state is not StreamState.RESET:
            stream._send_window_update()  # carries ACK
        return stream

    def __aiter__(self) -> AsyncIterator[YamuxStream]:
        return self._iter_accept()

    async def _iter_accept(self) -> AsyncIterator[YamuxStream]:
        while True:
            try:
                stream = await self.accept_stream()
            except SessionClosedError:
                return
            yield stream

    # -- session control ------------------------------------------------------

    async def ping(self) -> float:
        """Send a ping and return the round-trip time in seconds. Raises
        :class:`YamuxTimeoutError` after ``connection_write_timeout`` without an answer,
        :class:`SessionClosedError` if the session ends first."""
        await anyio.lowlevel.checkpoint()
        self._require_started()
        if self._closed:
            raise self._closed_exception()
        ping_id = self._ping_id
        self._ping_id = (ping_id + 1) & MAX_UINT32
        event = anyio.Event()
        self._pings[ping_id] = event
        try:
            self._enqueue(encode_header(_PING, Flag.SYN, 0, ping_id))
            start = time.perf_counter()
            with anyio.move_on_after(self._config.connection_write_timeout) as scope:
                await event.wait()
            answered = ping_id not in self._pings
        finally:
            self._pings.pop(ping_id, None)
        if answered:
            return time.perf_counter() - start
        if self._closed:
            raise self._closed_exception()
        assert scope.cancelled_caught
        raise YamuxTimeoutError(
            "yamux ping not answered",
            peer=self._name,
            step="yamux ping",
            expected=f"a reply within {self._config.connection_write_timeout} s",
        )

    async def go_away(self, code: GoAwayCode | int = GoAwayCode.NORMAL) -> None:
        """Tell the peer this side accepts no new streams (later SYNs are reset).
        Existing streams go on; the connection stays open."""
        await anyio.lowlevel.checkpoint()
        self._require_started()
        if self._closed:
            raise self._closed_exception()
        self._local_go_away = True
        self._enqueue(encode_header(_GO_AWAY, 0, 0, int(code)))

    # -- internals used by streams -------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise ClosedError(
                "the yamux session is not running: use `async with session:`", peer=self._name
            )

    def _closed_exception(self) -> SessionClosedError:
        cause = self._error
        if cause is None:
            message = "yamux session closed"
        else:
            message = f"yamux session ended: {cause.args[0] if cause.args else cause!r}"
        err = SessionClosedError(message, cause=cause, peer=self._name)
        err.__cause__ = cause
        return err

    def _enqueue(self, *parts: bytes) -> None:
        try:
            for part in parts:
                self._send_tx.send_nowait(part)
                self._pending += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._closed_exception() from None

    def _enqueue_quiet(self, part: bytes) -> None:
        try:
            self._send_tx.send_nowait(part)
            self._pending += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def _send_frame(self, header: bytes, payload: bytes) -> bool:
        """Write a data frame. When nothing is queued or being written, the calling
        task writes it itself (saving a hand-off to the writer task) and this returns
        True; otherwise the frame is queued behind the others and this returns False.
        Either way frames keep their order."""
        if self._pending or self._writing or self._closed:
            self._enqueue(header, payload)
            return False
        self._writing = True
        try:
            # Shielded: a write cancelled halfway would corrupt the framing for every
            # stream. The write timeout still bounds it.
            with anyio.CancelScope(shield=True):
                with anyio.fail_after(self._config.connection_write_timeout):
                    await self._write_parts(self._transport, [header, payload])
        except Exception as exc:
            self._begin_shutdown(self._write_failure(exc), go_away=None)
            raise self._closed_exception() from None
        finally:
            self._writing = False
            self._notify_write_idle()
        return True

    def _notify_write_idle(self) -> None:
        event = self._write_idle
        if event is not None:
            self._write_idle = None
            event.set()

    async def _wait_write_idle(self) -> None:
        while self._writing:
            if self._write_idle is None:
                self._write_idle = anyio.Event()
            await self._write_idle.wait()

    @staticmethod
    async def _write_parts(transport: anyio.abc.ByteStream, parts: list[bytes]) -> None:
        if len(parts) == 1:
            await transport.send(parts[0])
        elif len(parts) == 2 and len(parts[1]) >= _NO_COPY_SIZE:
            # A large payload goes out as is rather than copied behind its header.
            await transport.send(parts[0])
            await transport.send(parts[1])
        else:
            await transport.send(b"".join(parts))

    def _write_failure(self, exc: BaseException) -> BaseException:
        if isinstance(exc, TimeoutError):
            timeout = self._config.connection_write_timeout
            return YamuxTimeoutError(
                "yamux connection write timed out",
                peer=self._name,
                step="yamux write",
                expected=f"each write to finish within {timeout} s",
            )
        if isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)):
            return ConnectionClosedError(
                "connection lost while writing", peer=self._name, step="yamux write", seen=exc
            )
        logger.error("yamux write failed", exc_info=exc)
        return exc

    def _forget(self, stream: YamuxStream) -> None:
        if self._streams.get(stream._id) is stream:
            del self._streams[stream._id]
        self._established(stream)
        stream._done.set()

    def _established(self, stream: YamuxStream) -> None:
        if stream._inflight:
            stream._inflight = False
            self._inflight_count -= 1
            self._wake_openers()
        stream._acked.set()

    def _wake_openers(self) -> None:
        event = self._open_waiter_event
        if event is not None:
            self._open_waiter_event = None
            event.set()

    def _start_close_timer(self, stream: YamuxStream) -> None:
        if self._config.stream_close_timeout > 0 and self._tg is not None and not self._closed:
            self._tg.start_soon(self._close_timer, stream)

    async def _open_timer(self, stream: YamuxStream) -> None:
        with anyio.move_on_after(self._config.stream_open_timeout):
            await stream._acked.wait()
        if not stream._acked.is_set() and not self._closed and not stream._done.is_set():
            logger.error(
                "yamux: stream %d not acknowledged within %s s, closing the session",
                stream._id,
                self._config.stream_open_timeout,
            )
            self._begin_shutdown(
                YamuxTimeoutError(
                    "yamux stream open not acknowledged",
                    peer=self._name,
                    step=f"yamux stream {stream._id}",
                    expected=f"an ACK within {self._config.stream_open_timeout} s",
                ),
                go_away=None,
            )

    async def _close_timer(self, stream: YamuxStream) -> None:
        with anyio.move_on_after(self._config.stream_close_timeout):
            await stream._done.wait()
        if not stream._done.is_set() and not self._closed:
            logger.warning(
                "yamux: stream %d half-closed for %s s without the peer's FIN, resetting it",
                stream._id,
                self._config.stream_close_timeout,
            )
            stream.reset()

    # -- shutdown -------------------------------------------------------------

    def _begin_shutdown(self, error: BaseException | None, *, go_away: GoAwayCode | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        if go_away is not None:
            self._enqueue_quiet(encode_header(_GO_AWAY, 0, 0, int(go_away)))
        # The writer flushes what is queued, then closes the transport, which ends the
        # reader's pending receive. (Cancelling a pending receive instead can race with
        # the socket becoming readable on anyio's asyncio unix streams.)
        self._send_tx.close()
        self._keepalive_scope.cancel()
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._on_session_closed()
        self._inflight_count = 0
        self._wake_openers()
        self._accept_tx.close()
        for event in self._pings.values():
            event.set()
        self._closed_event.set()
        if error is not None:
            logger.debug("yamux session ended: %s", error)

    # -- background tasks -----------------------------------------------------

    async def _run_writer(self) -> None:
        rx = self._send_rx
        transport = self._transport
        timeout = self._config.connection_write_timeout
        try:
            with self._writer_scope:
                while True:
                    try:
                        first = await rx.receive()
                    except anyio.EndOfStream:
                        break
                    parts = [first]
                    size = len(first)
                    while size < _WRITE_BATCH:
                        try:
                            part = rx.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        parts.append(part)
                        size += len(part)
                    await self._wait_write_idle()  # a stream task may be writing directly
                    self._writing = True
                    try:
                        with anyio.fail_after(timeout):
                            await self._write_parts(transport, parts)
                    finally:
                        self._writing = False
                        self._pending -= len(parts)
        except Exception as exc:
            self._begin_shutdown(self._write_failure(exc), go_away=None)
        finally:
            self._begin_shutdown(None, go_away=None)
            rx.close()
            with anyio.CancelScope(shield=True):
                await self._wait_write_idle()
                # End the reader's pending receive before closing the transport.
                if shutdown_socket(transport):
                    with anyio.move_on_after(1):
                        await self._reader_done.wait()
            await anyio.aclose_forcefully(transport)
            self._writer_done.set()

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

    async def _run_keepalive(self) -> None:
        with self._keepalive_scope:
            while not self._closed:
                await anyio.sleep(self._config.keepalive_interval)
                try:
                    await self.ping()
                except YamuxTimeoutError:
                    logger.error("yamux: keepalive ping not answered, closing the session")
                    self._begin_shutdown(
                        YamuxTimeoutError(
                            "yamux keepalive failed",
                            peer=self._name,
                            step="yamux keepalive",
                            expected=(
                                f"a ping reply within {self._config.connection_write_timeout} s"
                            ),
                        ),
                        go_away=None,
                    )
                    return
                except SessionClosedError:
                    return

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

    def _incoming(self, stream_id: int) -> YamuxStream | None:
        peer_parity_ok = stream_id != 0 and (stream_id % 2 == 0) == self._client
        if not peer_parity_ok:
            role = "server" if self._client else "client"
            raise ProtocolError(
                "peer opened a stream with an id of the wrong parity (are both ends "
                f"{'clients' if self._client else 'servers'}?)",
                peer=self._name,
                step="yamux stream open",
                expected=f"{'even' if role == 'server' else 'odd'} non-zero ids from the {role}",
                seen=f"SYN for stream {stream_id}",
            )
        if self._local_go_away:
            self._enqueue_quiet(encode_header(_WINDOW_UPDATE, Flag.RST, stream_id, 0))
            return None
        if stream_id in self._streams:
            raise ProtocolError(
                "duplicate yamux stream",
                peer=self._name,
                step="yamux stream open",
                expected="a SYN for a new stream id",
                seen=f"SYN for stream {stream_id}, which is open",
            )
        stream = YamuxStream(self, stream_id, StreamState.SYN_RECEIVED)
        stream._pending_flags = Flag.ACK
        self._streams[stream_id] = stream
        try:
            self._accept_tx.send_nowait(stream)
        except anyio.WouldBlock:
            logger.warning("yamux: accept backlog exceeded, resetting stream %d", stream_id)
            del self._streams[stream_id]
            stream._state = StreamState.RESET
            stream._done.set()
            self._enqueue_quiet(encode_header(_WINDOW_UPDATE, Flag.RST, stream_id, 0))
            return None
        return stream

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


def client(
    transport: anyio.abc.ByteStream, config: YamuxConfig | None = None, *, name: str | None = None
) -> Session:
    """A client-side session (opens odd stream ids) over ``transport``."""
    return Session(transport, client=True, config=config, name=name)


def server(
    transport: anyio.abc.ByteStream, config: YamuxConfig | None = None, *, name: str | None = None
) -> Session:
    """A server-side session (opens even stream ids) over ``transport``."""
    return Session(transport, client=False, config=config, name=name)
