"""The socket plumbing NRI borrows from :mod:`plugwire.ttrpc`, in one place.

NRI runs its multiplexer over a raw unix socket (an accepted connection, a dialled
one, or the socketpair end on fd 3) and needs it as an :class:`anyio.abc.ByteStream`.
plugwire.ttrpc's own socket streams are the ones to use: on asyncio they are a lean
protocol-based stream with a synchronous ``try_send`` that the
:class:`~plugwire.ttrpc.nri.Multiplexer` uses to write whole frame batches without a
task switch (see ``benchmarks/nri_bench.py``); on trio they are anyio's.

They come from the public :mod:`plugwire.ttrpc.sockets`; every other NRI module goes
through this one.
"""

from __future__ import annotations

import os
import socket

import anyio.abc

from plugwire.core.transport import Address
from plugwire.ttrpc.sockets import accept as _accept
from plugwire.ttrpc.sockets import bind as _bind
from plugwire.ttrpc.sockets import connect as _connect
from plugwire.ttrpc.sockets import socket_stream as _socket_stream

__all__ = ["accept", "dial_unix", "listen_unix", "socket_stream"]


async def socket_stream(sock: socket.socket) -> anyio.abc.ByteStream:
    """Wrap a connected stream socket (its ownership passes to the stream)."""
    return await _socket_stream(sock)


async def dial_unix(path: str | os.PathLike[str]) -> anyio.abc.ByteStream:
    """Connect to the unix socket at ``path``; ``OSError`` when nothing listens."""
    return await _connect(Address("unix", os.fspath(path)))


def listen_unix(path: str | os.PathLike[str]) -> socket.socket:
    """A non-blocking socket listening at ``path`` (a stale socket file is replaced);
    ``OSError`` when it cannot be bound."""
    sock, _ = _bind(Address("unix", os.fspath(path)))
    return sock


async def accept(listener: socket.socket) -> socket.socket:
    """Wait for and accept the next connection on ``listener`` (wrap it with
    :func:`socket_stream`). Transient errors (EMFILE, ECONNABORTED...) are retried;
    ``OSError`` or ``ValueError`` mean the listener was closed."""
    return await _accept(listener)
