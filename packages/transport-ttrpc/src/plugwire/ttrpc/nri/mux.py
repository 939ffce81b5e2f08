"""NRI's socket multiplexer (``github.com/containerd/nri/pkg/net/multiplex``).

One NRI connection (a unix socket or the socketpair on fd 3) carries several logical
connections. Every frame is a big-endian ``u32 conn id`` + ``u32 payload length``
followed by the payload. NRI uses conn 1 for the Plugin service (the plugin serves,
the runtime calls) and conn 2 for the Runtime service (the runtime serves, the plugin
calls).

The upstream reader hands each frame to a ``net.Conn.Read`` call, and the ttrpc
reader on top of it reads through a 4096-byte ``bufio.Reader``: a frame larger than
the buffer it is read into fails with ``ENOMEM`` and the Go side drops the
connection. Upstream's reader also drops the connection ("failed to queue payload
for reading") as soon as 256 frames wait for one conn, so a 4 MiB message cut into
4096-byte frames (1025 of them) breaks it whenever the Go side's ttrpc reader falls
behind (a busy machine). Writes on a :class:`MuxConn` are therefore framed by ttrpc
message, the way upstream's own writer frames them: small messages are packed
whole into frames of at most :data:`MAX_SEND_FRAME` (4096) bytes; a larger message
goes as a frame with its 10-byte ttrpc header followed by one frame with its whole
payload (which the Go reader reads directly into the message buffer); a message
above the 4 MiB ttrpc limit, which the Go reader discards through its buffer, and
any write that is not made of whole ttrpc messages (after which the conn's message
boundaries are unknown), are cut into :data:`MAX_SEND_FRAME` pieces.

Frames for a conn id nobody opened are dropped, as upstream does. A frame that
announces more than :data:`MAX_FRAME_PAYLOAD` bytes, or a conn whose
:data:`READ_QUEUE_LENGTH` queued frames are not read within
:data:`QUEUE_STALL_TIMEOUT`, closes the whole trunk with a
:class:`~plugwire.core.errors.ProtocolError` (upstream: ``frame payload N bytes,
maximum is M`` / ``failed to queue payload for reading``).
"""

from __future__ import annotations

import struct
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from plugwire.core.errors import ClosedError, ConnectionClosedError, ProtocolError
from plugwire.ttrpc import MAX_MESSAGE_SIZE

__all__ = [
    "MAX_FRAME_PAYLOAD",
    "MAX_SEND_FRAME",
    "PLUGIN_SERVICE_CONN",
    "QUEUE_STALL_TIMEOUT",
    "READ_QUEUE_LENGTH",
    "RUNTIME_SERVICE_CONN",
    "Multiplexer",
    "MuxConn",
]

PLUGIN_SERVICE_CONN = 1
RUNTIME_SERVICE_CONN = 2

_HEADER = struct.Struct(">II")
_TTRPC_HEADER = 10
#: Upstream's limit: a ttrpc header plus the largest ttrpc message (4 MiB).
MAX_FRAME_PAYLOAD = 10 + (4 << 20)
#: The largest frame plugwire sends (the Go reader's bufio buffer size).
MAX_SEND_FRAME = 4096
#: Frames that may wait per conn without slowing the trunk reader (as upstream).
READ_QUEUE_LENGTH = 256
#: How long a full conn queue may stall the trunk reader before the trunk is
#: declared broken. Upstream's goroutines drain queues in parallel and fail at once;
#: a single event loop instead pauses reading until the conn's reader catches up.
QUEUE_STALL_TIMEOUT = 5.0


class MuxConn(anyio.abc.ByteStream):
    """One logical connection of a :class:`Multiplexer`, as an anyio byte stream.

    ``receive()`` returns the bytes of the next frame (or the rest of a frame when
    ``max_bytes`` cut it); at the end of the trunk it raises
    :class:`anyio.EndOfStream`, or :class:`anyio.BrokenResourceError` (caused by
    :attr:`Multiplexer.error`) if the trunk broke.
    """

    def __init__(self, mux: Multiplexer, conn_id: int) -> None:
        self._mux = mux
        self.conn_id = conn_id
        send, recv = anyio.create_memory_object_stream[bytes](READ_QUEUE_LENGTH)
        self._send: MemoryObjectSendStream[bytes] = send
        self._recv: MemoryObjectReceiveStream[bytes] = recv
        self._pending = b""
        self._closed = False
        # every write so far held whole ttrpc messages (see _frame_payloads)
        self._aligned = True

    def _frame_payloads(self, data: bytes) -> list[bytes | memoryview]:
        """The frame payloads for one write (see the module doc for the layout)."""
        if self._aligned:
            payloads = _ttrpc_payloads(data)
            if payloads is not None:
                return payloads
            self._aligned = False  # message boundaries unknown from here on
        return _chunks(data)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return data
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            data = await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._mux.error is not None:
                # a broken trunk reads as a broken stream; mux.error says why
                raise anyio.BrokenResourceError(str(self._mux.error)) from self._mux.error
            raise anyio.EndOfStream from None
        if len(data) > max_bytes:
            data, self._pending = data[:max_bytes], data[max_bytes:]
        return data

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        await self._mux._write(self.conn_id, self._frame_payloads(item))

    def try_send(self, item: bytes, cork: bool = True) -> bool:
        """Write ``item`` now if the trunk takes it without waiting (see
        :mod:`plugwire.ttrpc`'s frame writer); False means use :meth:`send`."""
        if self._closed or self._mux._try_send is None:
            return False
        return self._mux._try_write(self.conn_id, self._frame_payloads(item), cork)

    async def send_eof(self) -> None:
        raise NotImplementedError("NRI mux connections cannot be half-closed")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._mux._forget(self)
            self._send.close()
            self._recv.close()

    def _feed(self, data: bytes) -> bool:
        try:
            self._send.send_nowait(data)
        except anyio.WouldBlock:
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        return True

    async def _wait_feed(self, data: bytes) -> bool:
        """Queue ``data`` once the reader makes room; False after QUEUE_STALL_TIMEOUT."""
        with anyio.move_on_after(QUEUE_STALL_TIMEOUT):
            try:
                await self._send.send(data)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            return True
        return False

    def _end(self) -> None:
        self._send.close()


class Multiplexer:
    """Split one byte stream (the *trunk*) into numbered :class:`MuxConn` streams.

    Use as an async context manager: the reader task runs inside it and the trunk is
    closed on exit::

        async with Multiplexer(sock) as mux:
            plugin_conn = mux.open(PLUGIN_SERVICE_CONN)
            runtime_conn = mux.open(RUNTIME_SERVICE_CONN)

    Open the conns before data can arrive for them (upstream drops frames for unknown
    ids). ``error`` holds why the trunk stopped (``None`` for a clean EOF), and
    ``closed`` is set once it did.
    """

    def __init__(self, trunk: anyio.abc.ByteStream, *, peer: str | None = None) -> None:
        self._trunk = trunk
        self._try_send = getattr(trunk, "try_send", None)
        self._reader = BufferedByteReceiveStream(trunk)
        self._conns: dict[int, MuxConn] = {}
        self._write_lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self.peer = peer
        self.error: Exception | None = None
        self.closed = anyio.Event()
        self._is_closed = False

    def open(self, conn_id: int) -> MuxConn:
        """The :class:`MuxConn` for ``conn_id`` (created on first use; 0 is reserved)."""
        if conn_id == 0:
            raise ProtocolError(
                "mux conn id 0 is reserved", peer=self.peer, step="mux open", expected=">= 1"
            )
        if self._is_closed:
            raise ClosedError("multiplexer is closed", peer=self.peer, step="mux open")
        conn = self._conns.get(conn_id)
        if conn is None:
            conn = self._conns[conn_id] = MuxConn(self, conn_id)
        return conn

    async def __aenter__(self) -> Multiplexer:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._read_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        assert self._tg is not None
        # only the reader runs in the task group: the body's exception propagates as is
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        return None

    async def aclose(self) -> None:
        """Close every conn and the trunk (idempotent)."""
        if self._is_closed:
            return
        self._is_closed = True
        for conn in list(self._conns.values()):
            conn._end()
        with anyio.CancelScope(shield=True):
            try:
                await self._trunk.aclose()
            except Exception:  # already broken: nothing more to do
                pass
        self.closed.set()
        # The reader ends by itself on the closed trunk; cancelling the task group
        # here would also cancel the body of ``async with Multiplexer``.

    def _forget(self, conn: MuxConn) -> None:
        if self._conns.get(conn.conn_id) is conn:
            del self._conns[conn.conn_id]

    @staticmethod
    def _frames(conn_id: int, payloads: list[bytes | memoryview]) -> list[bytes]:
        return [_HEADER.pack(conn_id, len(p)) + bytes(p) for p in payloads]

    def _try_write(self, conn_id: int, payloads: list[bytes | memoryview], cork: bool) -> bool:
        # A trunk with a synchronous try_send (plugwire.ttrpc's asyncio socket
        # stream) takes all frames in one buffered write: whole frames never
        # interleave with the frames of a concurrent async write.
        if self._try_send is None or self._is_closed:
            return False
        return bool(self._try_send(b"".join(self._frames(conn_id, payloads)), cork))

    async def _write(self, conn_id: int, payloads: list[bytes | memoryview]) -> None:
        if self._is_closed:
            raise ConnectionClosedError(
                "NRI connection closed", peer=self.peer, step="mux write", seen=self.error
            )
        frames = self._frames(conn_id, payloads)
        if self._try_send is not None:
            # let a corked try_send write leave first, so frames keep their order
            await anyio.lowlevel.checkpoint()
        async with self._write_lock:
            try:
                for frame in frames:
                    await self._trunk.send(frame)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._fail(
                    ConnectionClosedError(
                        "NRI connection broke while writing",
                        peer=self.peer,
                        step="mux write",
                        seen=repr(exc),
                    )
                )
                await self.aclose()
                raise self.error from exc  # type: ignore[misc]

    def _fail(self, err: Exception) -> None:
        if self.error is None:
            self.error = err

    async def _read_loop(self) -> None:
        try:
            while True:
                header = await self._reader.receive_exactly(_HEADER.size)
                conn_id, size = _HEADER.unpack(header)
                if size > MAX_FRAME_PAYLOAD:
                    self._fail(
                        ProtocolError(
                            f"conn {conn_id}: frame payload {size} bytes, maximum is "
                            f"{MAX_FRAME_PAYLOAD}",
                            peer=self.peer,
                            step="mux read",
                            expected=f"<= {MAX_FRAME_PAYLOAD} bytes",
                            seen=f"{size} bytes",
                        )
                    )
                    return
                payload = await self._reader.receive_exactly(size) if size else b""
                conn = self._conns.get(conn_id)
                if (
                    conn is not None
                    and not conn._feed(payload)
                    and not await conn._wait_feed(payload)
                ):
                    self._fail(
                        ProtocolError(
                            "failed to queue payload for reading",
                            peer=self.peer,
                            step="mux read",
                            expected=f"a reader draining conn {conn_id} within "
                            f"{QUEUE_STALL_TIMEOUT} s",
                        )
                    )
                    return
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            pass
        except (anyio.BrokenResourceError, OSError) as exc:
            self._fail(
                ConnectionClosedError(
                    "NRI connection broke while reading",
                    peer=self.peer,
                    step="mux read",
                    seen=repr(exc),
                )
            )
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()


def _chunks(data: bytes) -> list[bytes | memoryview]:
    """``data`` cut into :data:`MAX_SEND_FRAME` pieces (one empty frame for b"")."""
    view = memoryview(data)
    return [view[i : i + MAX_SEND_FRAME] for i in range(0, max(len(view), 1), MAX_SEND_FRAME)]


def _ttrpc_payloads(data: bytes) -> list[bytes | memoryview] | None:
    """Frame payloads for ``data`` made of whole ttrpc messages; ``None`` if it is not.

    Small messages are packed whole into frames of up to :data:`MAX_SEND_FRAME`
    bytes. A larger message goes as its 10-byte header frame followed by one frame
    with its whole payload: the Go reader takes the header through its 4096-byte
    buffer, which is then empty, and reads a payload of 4096 bytes or more directly
    into the message buffer, so the big frame fits (upstream's own writer frames
    large messages alike). A message above the ttrpc limit is cut into
    :data:`MAX_SEND_FRAME` pieces, since the Go reader discards it through its
    buffer.
    """
    n = len(data)
    # the common case: one small message
    if _TTRPC_HEADER <= n <= MAX_SEND_FRAME and _TTRPC_HEADER + int.from_bytes(data[:4]) == n:
        return [data]
    view = memoryview(data)
    payloads: list[bytes | memoryview] = []
    pack_start = pos = 0
    while pos < n:
        if n - pos < _TTRPC_HEADER:
            return None
        end = pos + _TTRPC_HEADER + int.from_bytes(view[pos : pos + 4])
        if end > n:
            return None
        if end - pack_start <= MAX_SEND_FRAME:
            pos = end  # joins the current pack of small messages
            continue
        if pos > pack_start:
            payloads.append(view[pack_start:pos])
        if end - pos <= MAX_SEND_FRAME:
            pack_start = pos  # starts a new pack
        elif end - pos - _TTRPC_HEADER <= MAX_MESSAGE_SIZE:
            payloads.append(view[pos : pos + _TTRPC_HEADER])
            payloads.append(view[pos + _TTRPC_HEADER : end])
            pack_start = end
        else:
            payloads.extend(_chunks(bytes(view[pos:end])))
            pack_start = end
        pos = end
    if n > pack_start or not payloads:
        payloads.append(view[pack_start:n])
    return payloads
