"""Unix-socket byte streams for every transport: dial, listen, wrap.

anyio's own unix streams on asyncio (``anyio.connect_unix``,
``anyio.create_unix_listener``, ``UNIXSocketStream``) wait for data with a raw reader
callback that calls ``set_result`` on a future. When the task waiting in ``receive``
is cancelled in the same loop iteration as data arrives (the other pump of a proxy
finishing, a host closing a connection) that callback raises ``InvalidStateError``
into the loop's exception handler. The stream anyio gives for any connected stream
socket (:meth:`anyio.abc.SocketStream.from_socket`) reads through an asyncio
transport instead and has no such race; these helpers give that stream for unix
sockets on both backends. (File-descriptor passing needs ``UNIXSocketStream``; none
of plugwire's users of these helpers pass descriptors.)
"""

from __future__ import annotations

import os
import socket
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["UnixListener", "connect_unix", "create_unix_listener", "stream_from_socket"]


async def stream_from_socket(sock: socket.socket) -> anyio.abc.SocketStream:
    """Wrap a connected unix (or any stream) socket; the stream owns it from here."""
    sock.setblocking(False)
    return await anyio.abc.SocketStream.from_socket(sock)


async def connect_unix(path: str | os.PathLike[str]) -> anyio.abc.SocketStream:
    """Dial the unix socket at ``path``.

    Raises what ``connect(2)`` does: :class:`FileNotFoundError` without a socket file,
    :class:`ConnectionRefusedError` when nothing listens on it. A full listen backlog
    is waited out, as by :func:`anyio.connect_unix`.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.connect(os.fspath(path))
            except BlockingIOError:  # EAGAIN: the backlog is full; try again when it moves
                await anyio.wait_writable(sock)
            else:
                break
        await anyio.lowlevel.checkpoint()
    except BaseException:
        sock.close()
        raise
    return await stream_from_socket(sock)


class UnixListener(anyio.abc.Listener[anyio.abc.SocketStream]):
    """A listening unix socket whose accepted connections are :func:`stream_from_socket`
    streams. ``extra(SocketAttribute.raw_socket)`` and ``local_address`` are the
    listening socket's, as for anyio's listeners."""

    def __init__(self, inner: anyio.abc.SocketListener) -> None:
        self._inner = inner
        self._sock: socket.socket = inner.extra(anyio.abc.SocketAttribute.raw_socket)

    @property
    def extra_attributes(self) -> Any:
        return self._inner.extra_attributes

    async def accept(self) -> anyio.abc.SocketStream:
        """The next connection. Raises :class:`anyio.ClosedResourceError` once closed."""
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
            except OSError as exc:
                if self._sock.fileno() == -1:
                    raise anyio.ClosedResourceError from exc
                raise
            else:
                return await stream_from_socket(conn)

    async def serve(self, handler: Any, task_group: anyio.abc.TaskGroup | None = None) -> None:
        """Accept forever and run ``handler(stream)`` for each connection in a task."""
        async with anyio.create_task_group() as tg:
            group = task_group or tg
            while True:
                stream = await self.accept()
                group.start_soon(handler, stream)

    async def aclose(self) -> None:
        if self._sock.fileno() != -1:
            anyio.notify_closing(self._sock)  # an accept waiting on it ends (closed)
        await self._inner.aclose()


async def create_unix_listener(
    path: str | os.PathLike[str], *, mode: int | None = None, backlog: int = 65536
) -> UnixListener:
    """Listen on a new unix socket at ``path`` (``mode``: its file mode), as
    :func:`anyio.create_unix_listener` does; accepted streams are transport-based."""
    inner = await anyio.create_unix_listener(path, mode=mode, backlog=backlog)
    return UnixListener(inner)
