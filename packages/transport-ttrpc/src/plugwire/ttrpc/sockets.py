"""Socket plumbing used by plugwire.ttrpc, public for protocols layered on it (NRI).

- :func:`socket_stream` wraps a connected stream socket (unix or TCP; ownership
  passes) as an :class:`anyio.abc.ByteStream`. On asyncio that is an
  :class:`AsyncioSocketStream`, a lean ``asyncio.Protocol``-based stream whose
  ``try_send(data, cork=True) -> bool`` writes without awaiting when the transport
  is not paused (``cork`` batches everything written in one loop iteration into one
  ``send()``); on trio it is anyio's socket stream.
- :func:`connect` dials an :class:`~plugwire.core.transport.Address` (``OSError`` when
  nothing listens), :func:`bind` returns a non-blocking listening socket and the bound
  address (a stale unix socket file is replaced), :func:`accept` waits for and
  accepts one connection (retrying transient errors).
"""

from __future__ import annotations

from ._sockets import AsyncioSocketStream, accept, bind, connect, socket_stream

__all__ = ["AsyncioSocketStream", "accept", "bind", "connect", "socket_stream"]
