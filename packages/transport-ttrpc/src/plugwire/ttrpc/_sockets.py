"""Socket plumbing: byte streams over connected sockets, listening sockets.

On asyncio, sockets are wrapped in :class:`AsyncioSocketStream`, a lean
``asyncio.Protocol``-based :class:`anyio.abc.ByteStream` (anyio's own asyncio unix
stream re-registers the fd on every receive and can log InvalidStateError when a
receive is cancelled). On trio, anyio's streams are used as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import ConfigError
from plugwire.core.transport import Address

__all__ = ["AsyncioSocketStream", "accept", "bind", "connect", "socket_stream"]

_READ_HIGH_WATER = 1 << 20


#: Receive buffer of one connection: the socket is read into it (``recv_into``), so a
#: receive allocates only the bytes that arrived (``recv(256 KiB)`` costs an
#: mmap/mremap/munmap per read).
_RECV_BUFFER = 1 << 16


class _Protocol(asyncio.BufferedProtocol):
    __slots__ = (
        "_recv_view",
        "buffer",
        "buffered",
        "drain",
        "eof",
        "exc",
        "on_end",
        "paused",
        "reading_paused",
        "sink",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.eof = False
        self.exc: BaseException | None = None
        self.paused = False
        self.reading_paused = False
        # Callback mode (see AsyncioSocketStream.deliver_to): data goes straight to
        # ``sink`` from the event loop's callback, no task wakes up to receive it.
        self.sink: Callable[[bytes], None] | None = None
        self.on_end: Callable[[], None] | None = None
        self._recv_view = memoryview(bytearray(_RECV_BUFFER))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._recv_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._recv_view[:nbytes].tobytes())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink(data)
            return
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _ended(self) -> None:
        on_end = self.on_end
        if on_end is not None:
            self.on_end = None
            on_end()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        self._ended()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.exc = exc
        self._wake()
        self._ended()
        self.paused = False
        d = self.drain
        if d is not None and not d.done():
            d.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        d = self.drain
        if d is not None and not d.done():
            d.set_result(None)


class AsyncioSocketStream(anyio.abc.ByteStream):
    """A connected socket as an anyio byte stream on asyncio (see module doc)."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False
        self._cork: list[bytes] | None = None
        self._loop = asyncio.get_running_loop()

    def deliver_to(self, sink: Callable[[bytes], None], on_end: Callable[[], None]) -> None:
        """Switch to callback mode: every chunk received from now on (and what is
        already buffered) is passed to ``sink`` from the event loop's callback, and
        ``on_end()`` runs once at end of stream, failure or close. :meth:`receive`
        must not be used afterwards. (A server's read loop without a task: one event
        loop iteration less per request.)"""
        p = self._protocol
        if p.reading_paused:
            p.reading_paused = False
            self._transport.resume_reading()
        while p.buffer:
            data = p.buffer.popleft()
            p.buffered -= len(data)
            sink(data)
        p.sink = sink
        p.on_end = on_end
        if p.eof or self._closed:
            p._ended()

    def _flush(self) -> None:
        cork = self._cork
        self._cork = None
        if cork and not self._transport.is_closing():
            self._transport.write(b"".join(cork) if len(cork) > 1 else cork[0])

    async def receive(self, max_bytes: int = 65536) -> bytes:
        p = self._protocol
        while not p.buffer:
            if self._closed:
                raise anyio.ClosedResourceError
            if p.eof:
                if p.exc is not None:
                    raise anyio.BrokenResourceError from p.exc
                raise anyio.EndOfStream
            if p.waiter is not None:
                raise anyio.BusyResourceError("reading from")
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                await p.waiter
            finally:
                p.waiter = None
        data = p.buffer.popleft()
        if len(data) > max_bytes:
            p.buffer.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        p.buffered -= len(data)
        if p.reading_paused and p.buffered < _READ_HIGH_WATER // 2:
            p.reading_paused = False
            self._transport.resume_reading()
        return data

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        p = self._protocol
        if self._transport.is_closing() or (p.eof and p.exc is not None):
            raise anyio.BrokenResourceError from p.exc
        # Corked frames from try_send() were queued first: they must leave first.
        self._flush()
        self._transport.write(item)
        if p.paused:
            p.drain = asyncio.get_running_loop().create_future()
            try:
                await p.drain
            finally:
                p.drain = None
            if self._transport.is_closing():
                raise anyio.BrokenResourceError from p.exc

    def try_send(self, item: bytes, cork: bool = True) -> bool:
        """Write ``item`` now if the transport takes it without waiting (the fast
        path: asyncio transports buffer writes); False means use :meth:`send`.

        With ``cork``, frames written during one event-loop iteration (many
        concurrent calls, many replies) leave in one ``send()`` at the end of the
        iteration; without it (a lone call) the data is written at once.
        """
        p = self._protocol
        if self._closed or p.paused or p.eof or self._transport.is_closing():
            return False
        pending = self._cork
        if pending is None:
            if cork:
                self._cork = [item]
                self._loop.call_soon(self._flush)
            else:
                self._transport.write(item)
        elif cork:
            pending.append(item)
        else:
            pending.append(item)
            self._flush()
        return True

    async def send_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    async def aclose(self) -> None:
        if not self._closed:
            self._flush()
            self._closed = True
            self._transport.close()
            self._protocol._wake()
            self._protocol._ended()

    @property
    def extra_attributes(self) -> Any:
        sock = self._transport.get_extra_info("socket")
        peer = self._transport.get_extra_info("peername")
        return {
            anyio.abc.SocketAttribute.raw_socket: lambda: sock,
            anyio.abc.SocketAttribute.remote_address: lambda: peer,
        }


def _backend() -> str:
    """``asyncio`` when running under an asyncio loop, else ``trio``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


async def socket_stream(sock: socket.socket) -> anyio.abc.ByteStream:
    """Wrap a connected stream socket (ownership passes to the stream)."""
    if _backend() == "asyncio":
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        proto = _Protocol()
        transport, _ = await loop.connect_accepted_socket(lambda: proto, sock)
        return AsyncioSocketStream(transport, proto)
    if sock.family == socket.AF_UNIX:
        return await anyio.abc.UNIXSocketStream.from_socket(sock)
    return await anyio.abc.SocketStream.from_socket(sock)


def _split_hostport(addr: Address) -> tuple[str, int]:
    host, sep, port = addr.address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("bad TCP address", step="address", expected="host:port", seen=str(addr))
    return host.strip("[]") or "127.0.0.1", int(port)


async def connect(addr: Address) -> anyio.abc.ByteStream:
    """Dial a unix or TCP address. Raises OSError when nothing listens."""
    if addr.network == "unix":
        if _backend() == "asyncio":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, addr.address)
            except BaseException:
                sock.close()
                raise
            return await socket_stream(sock)
        return await anyio.connect_unix(addr.address)
    if addr.network == "tcp":
        host, port = _split_hostport(addr)
        stream = await anyio.connect_tcp(host, port)
        with contextlib.suppress(OSError):
            stream.extra(anyio.abc.SocketAttribute.raw_socket).setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        return stream
    raise ConfigError(
        "ttrpc cannot dial this network", step="connect", expected="unix or tcp", seen=str(addr)
    )


def _remove_stale_socket(path: str) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def bind(addr: Address) -> tuple[socket.socket, Address]:
    """A non-blocking listening socket for ``addr`` and the bound address."""
    if addr.network == "unix":
        _remove_stale_socket(addr.address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(addr.address)
            sock.listen(512)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock, addr
    if addr.network == "tcp":
        host, port = _split_hostport(addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=512)
        sock.setblocking(False)
        bound = sock.getsockname()
        return sock, Address(
            "tcp",
            f"{bound[0]}:{bound[1]}" if family == socket.AF_INET else f"[{bound[0]}]:{bound[1]}",
        )
    raise ConfigError(
        "ttrpc cannot listen on this network", step="listen", expected="unix or tcp", seen=str(addr)
    )


async def accept(sock: socket.socket) -> socket.socket:
    """Wait for and accept one connection (retrying transient errors)."""
    while True:
        await anyio.wait_readable(sock)
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno in (
                errno.EMFILE,
                errno.ENFILE,
                errno.ENOBUFS,
                errno.ENOMEM,
                errno.ECONNABORTED,
            ):
                await anyio.sleep(0.05)
                continue
            raise
        if conn.family != socket.AF_UNIX:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn
