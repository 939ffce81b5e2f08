"""One yamux stream: an :class:`anyio.abc.ByteStream` inside a :class:`Session`."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from plugwire.core.errors import ProtocolError

from ._config import YamuxConfig
from ._errors import StreamClosedError, StreamResetError
from ._frame import Flag, FrameType, encode_header

__all__ = ["SessionLink", "StreamState", "YamuxStream"]

#: The largest Data frame this side sends, whatever window the peer grants.
MAX_FRAME_PAYLOAD = 256 * 1024


class SessionLink(Protocol):
    """What a stream needs of the session that carries it, handed in at creation.

    :class:`~plugwire.grpc.yamux.Session` satisfies it; the stream module does not
    import the session module (no import circle).
    """

    @property
    def name(self) -> str | None: ...
    @property
    def _config(self) -> YamuxConfig: ...
    @property
    def _initial_window(self) -> int: ...
    @property
    def _closed(self) -> bool: ...
    @property
    def _streams(self) -> Mapping[int, YamuxStream]: ...
    def _closed_exception(self) -> BaseException: ...
    def _enqueue_quiet(self, part: bytes) -> None: ...
    async def _send_frame(self, header: bytes, payload: bytes) -> bool: ...
    def _forget(self, stream: YamuxStream) -> None: ...
    def _established(self, stream: YamuxStream) -> None: ...
    def _start_close_timer(self, stream: YamuxStream) -> None: ...


class StreamState(enum.Enum):
    """The states of hashicorp/yamux's stream state machine."""

    INIT = "init"
    SYN_SENT = "syn-sent"
    SYN_RECEIVED = "syn-received"
    ESTABLISHED = "established"
    LOCAL_CLOSE = "local-close"
    REMOTE_CLOSE = "remote-close"
    CLOSED = "closed"
    RESET = "reset"


_OPEN_STATES = (
    StreamState.INIT,
    StreamState.SYN_SENT,
    StreamState.SYN_RECEIVED,
    StreamState.ESTABLISHED,
)


class _Waiter:
    """Wakes every task blocked in :meth:`wait` at the next :meth:`notify`.

    Callers check their condition, then wait, then check again: there is no await
    between the check and the registration, so no wake-up is lost.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    async def wait(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def notify(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()


class YamuxStream(anyio.abc.ByteStream):
    """A bidirectional byte stream multiplexed over a yamux :class:`Session`.

    Obtain one from :meth:`Session.open_stream` or :meth:`Session.accept_stream`.

    * :meth:`receive` returns buffered bytes (at most ``max_bytes``), raises
      :class:`anyio.EndOfStream` once the peer half-closed and everything was read,
      :class:`StreamResetError` after a reset, :class:`SessionClosedError` when the
      session ended first, and :class:`StreamClosedError` after :meth:`aclose`.
    * :meth:`send` blocks while the peer's receive window is exhausted (flow
      control). It raises :class:`StreamClosedError` after :meth:`send_eof`.
    * :meth:`send_eof` half-closes (FIN); reading goes on.
    * :meth:`aclose` closes both directions gracefully (FIN; data that still arrives
      is dropped and its window credited back); :meth:`reset` aborts (RST).

    Deadlines are anyio cancel scopes (``with anyio.fail_after(1): await
    stream.receive()``). A cancelled :meth:`receive` loses no data; a cancelled
    :meth:`send` may have sent a prefix of its bytes, as with any socket.
    """

    def __init__(self, session: SessionLink, stream_id: int, state: StreamState) -> None:
        self._session = session
        self._id = stream_id
        self._state = state
        self._pending_flags = Flag.NONE
        self._recv_buf: deque[bytes] = deque()
        self._recv_off = 0  # bytes already consumed from _recv_buf[0]
        self._recv_len = 0
        self._recv_window = session._initial_window
        self._send_window = session._initial_window
        self._recv_waiter = _Waiter()
        self._send_waiter = _Waiter()
        self._recv_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")
        self._user_closed = False
        self._reset_by_peer = False
        self._inflight = False  # opened here, ACK not yet seen
        self._acked = anyio.Event()
        self._done = anyio.Event()  # no longer registered in the session

    # -- public ---------------------------------------------------------------

    @property
    def stream_id(self) -> int:
        """The stream id: odd when the yamux client opened the stream, even for the server."""
        return self._id

    @property
    def session(self) -> SessionLink:
        return self._session

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def send_window(self) -> int:
        """Bytes this side may still send before the peer grants more window."""
        return self._send_window

    @property
    def receive_window(self) -> int:
        """Bytes the peer may still send before this side grants more window."""
        return self._recv_window

    def __repr__(self) -> str:
        return f"<YamuxStream id={self._id} state={self._state.value}>"

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        with self._recv_guard:
            await anyio.lowlevel.checkpoint_if_cancelled()
            yielded = False
            while True:
                if self._user_closed:
                    raise StreamClosedError(
                        "yamux stream used after aclose()", peer=self._session.name
                    )
                if self._state is StreamState.RESET:
                    raise self._reset_error()
                if self._recv_len:
                    data = self._take(max_bytes)
                    if not self._session._closed:
                        self._send_window_update()
                    if not yielded:
                        await anyio.lowlevel.cancel_shielded_checkpoint()
                    return data
                if self._state in (StreamState.REMOTE_CLOSE, StreamState.CLOSED):
                    raise anyio.EndOfStream
                if self._session._closed:
                    raise self._session._closed_exception()
                yielded = True
                await self._recv_waiter.wait()

    async def send(self, item: bytes) -> None:
        with self._send_guard:
            await anyio.lowlevel.checkpoint_if_cancelled()
            self._check_writable()
            yielded = False
            view = memoryview(item)
            total = len(view)
            offset = 0
            session = self._session
            while offset < total:
                while True:
                    self._check_writable()
                    if self._send_window > 0:
                        break
                    yielded = True
                    await self._send_waiter.wait()
                n = min(self._send_window, total - offset, MAX_FRAME_PAYLOAD)
                if offset == 0 and n == total and type(item) is bytes:
                    chunk = item
                else:
                    chunk = view[offset : offset + n].tobytes()
                flags = self._take_flags()
                self._send_window -= n
                offset += n
                header = encode_header(FrameType.DATA, flags, self._id, n)
                if await session._send_frame(header, chunk):
                    yielded = True
            if not yielded:
                await anyio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self._state is StreamState.RESET:
            raise self._reset_error()
        if self._state in (StreamState.LOCAL_CLOSE, StreamState.CLOSED):
            return
        if self._session._closed:
            raise self._session._closed_exception()
        self._close_write()

    async def aclose(self) -> None:
        if not self._user_closed:
            self._user_closed = True
            if not self._session._closed and self._state is not StreamState.RESET:
                self._close_write()
                self._recv_buf.clear()
                self._recv_off = 0
                self._recv_len = 0
                if self._session._streams.get(self._id) is self:
                    self._send_window_update()
            self._recv_waiter.notify()
            self._send_waiter.notify()
        await anyio.lowlevel.cancel_shielded_checkpoint()

    def reset(self) -> None:
        """Abort the stream: send RST; both sides' pending and later operations fail
        with :class:`StreamResetError`. A no-op once the stream is fully closed."""
        if self._state in (StreamState.RESET, StreamState.CLOSED) or self._session._closed:
            return
        self._state = StreamState.RESET
        self._reset_by_peer = False
        flags = self._take_flags() | Flag.RST
        self._session._enqueue_quiet(encode_header(FrameType.WINDOW_UPDATE, flags, self._id, 0))
        self._session._forget(self)
        self._notify()

    async def wait_closed(self) -> None:
        """Wait until the stream has left the session: both halves closed, reset, or
        the session ended."""
        await self._done.wait()

    # -- helpers --------------------------------------------------------------

    def _reset_error(self) -> StreamResetError:
        who = "by the peer" if self._reset_by_peer else "locally"
        return StreamResetError(
            f"yamux stream {self._id} was reset {who}",
            stream_id=self._id,
            by_peer=self._reset_by_peer,
            peer=self._session.name,
        )

    def _check_writable(self) -> None:
        if self._user_closed:
            raise StreamClosedError("yamux stream used after aclose()", peer=self._session.name)
        state = self._state
        if state is StreamState.RESET:
            raise self._reset_error()
        if state in (StreamState.LOCAL_CLOSE, StreamState.CLOSED):
            raise StreamClosedError(
                f"yamux stream {self._id} written after send_eof()", peer=self._session.name
            )
        if self._session._closed:
            raise self._session._closed_exception()

    def _take(self, max_bytes: int) -> bytes:
        buf = self._recv_buf
        parts: list[bytes] = []
        need = max_bytes
        while buf and need:
            head = buf[0]
            off = self._recv_off
            avail = len(head) - off
            if avail <= need:
                parts.append(head if off == 0 else head[off:])
                buf.popleft()
                self._recv_off = 0
                need -= avail
            else:
                parts.append(head[off : off + need])
                self._recv_off = off + need
                need = 0
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._recv_len -= len(data)
        return data

    def _take_flags(self) -> Flag:
        flags = self._pending_flags
        if flags:
            self._pending_flags = Flag.NONE
            if flags & Flag.SYN and self._state is StreamState.INIT:
                self._state = StreamState.SYN_SENT
            if flags & Flag.ACK and self._state is StreamState.SYN_RECEIVED:
                self._state = StreamState.ESTABLISHED
        return flags

    def _send_window_update(self) -> None:
        """Grant the peer more window once at least half the maximum was consumed,
        or now if a SYN/ACK is pending (hashicorp/yamux's rule)."""
        max_window = self._session._config.max_stream_window_size
        delta = (max_window - self._recv_len) - self._recv_window
        if delta < max_window // 2 and not self._pending_flags:
            return
        flags = self._take_flags()
        self._recv_window += delta
        self._session._enqueue_quiet(encode_header(FrameType.WINDOW_UPDATE, flags, self._id, delta))

    def _close_write(self) -> None:
        state = self._state
        if state in _OPEN_STATES:
            self._state = StreamState.LOCAL_CLOSE
            closed = False
        elif state is StreamState.REMOTE_CLOSE:
            self._state = StreamState.CLOSED
            closed = True
        else:
            return
        flags = self._take_flags() | Flag.FIN
        self._session._enqueue_quiet(encode_header(FrameType.WINDOW_UPDATE, flags, self._id, 0))
        if closed:
            self._session._forget(self)
        else:
            self._session._start_close_timer(self)
        self._notify()

    def _notify(self) -> None:
        self._recv_waiter.notify()
        self._send_waiter.notify()

    # -- called by the session's reader --------------------------------------

    def _process_flags(self, flags: int) -> None:
        if flags & Flag.ACK:
            if self._state is StreamState.SYN_SENT:
                self._state = StreamState.ESTABLISHED
            self._session._established(self)
        if flags & Flag.FIN:
            state = self._state
            if state in _OPEN_STATES:
                self._state = StreamState.REMOTE_CLOSE
                self._notify()
            elif state is StreamState.LOCAL_CLOSE:
                self._state = StreamState.CLOSED
                self._session._forget(self)
                self._notify()
            else:
                raise ProtocolError(
                    "unexpected FIN flag",
                    peer=self._session.name,
                    step=f"yamux stream {self._id}",
                    expected="at most one FIN per stream",
                    seen=f"FIN in state {state.value}",
                )
        if flags & Flag.RST:
            self._state = StreamState.RESET
            self._reset_by_peer = True
            self._session._forget(self)
            self._notify()

    def _on_window_update(self, delta: int) -> None:
        self._send_window += delta
        self._send_waiter.notify()

    def _on_data(self, payload: bytes) -> None:
        length = len(payload)
        if length > self._recv_window:
            raise ProtocolError(
                "yamux receive window exceeded",
                peer=self._session.name,
                step=f"yamux stream {self._id}",
                expected=f"<= {self._recv_window} bytes (the window granted)",
                seen=f"a {length}-byte data frame",
            )
        self._recv_window -= length
        if self._user_closed:
            # Nobody will read it: drop the bytes, credit the window back.
            if self._session._streams.get(self._id) is self:
                self._send_window_update()
            return
        self._recv_buf.append(payload)
        self._recv_len += length
        self._recv_waiter.notify()

    def _on_session_closed(self) -> None:
        self._inflight = False
        self._acked.set()  # wakes the open timer
        self._done.set()
        self._notify()
