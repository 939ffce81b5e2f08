"""Socket helpers shared by the session and the bridges."""

from __future__ import annotations

import socket

import anyio
import anyio.abc

__all__ = ["shutdown_socket"]


def shutdown_socket(stream: anyio.abc.AnyByteStream) -> bool:
    """Shut down both directions of the socket under ``stream``, if there is one.

    A receive pending on the stream then ends (EOF) by itself. This is how a task
    interrupts another task's read here, rather than closing the stream or cancelling
    the read: on anyio's asyncio backend both of those can race with the socket
    becoming readable on unix sockets (``InvalidStateError`` in a reader callback).
    Returns whether ``stream`` had a socket.
    """
    try:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except anyio.TypedAttributeLookupError:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more
    return True
