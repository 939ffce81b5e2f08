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

from plugwire.core.errors import ClosedError, ProtocolError

from ._config import YamuxConfig
from ._errors import (
    RemoteGoAwayError,
    SessionClosedError,
    StreamsExhaustedError,
    YamuxTimeoutError,
)
from ._frame import (
    INITIAL_STREAM_WINDOW,
    MAX_UINT32,
    Flag,
    FrameType,
    GoAwayCode,
    encode_header,
)
from ._reader import SessionReader
from ._stream import StreamState, YamuxStream
from ._tracking import StreamTracking
from ._writer import SessionWriter

__all__ = ["Session", "client", "server"]

logger = logging.getLogger("plugwire.grpc.yamux")

_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)
_PING = int(FrameType.PING)
_GO_AWAY = int(FrameType.GO_AWAY)


class Session(SessionReader, SessionWriter, StreamTracking):
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

    def _incoming(self, stream_id: int) -> YamuxStream | None:
        """A SYN from the peer: register the stream and queue it for accept_stream."""
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

    # -- keepalive ------------------------------------------------------------

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
