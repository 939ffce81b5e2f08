"""Bridges between yamux streams and grpc.aio, which only speaks to real sockets.

grpc.aio servers listen on, and channels dial, addresses handled by grpc's C core:
they cannot run over a :class:`~plugwire.grpc.yamux.YamuxStream`. The bridges splice
each yamux stream to one local unix-socket connection, copying bytes both ways and
propagating half-closes (FIN <-> ``shutdown(SHUT_WR)``):

* :class:`YamuxServeBridge` accepts the session's streams and connects each to a
  target (a unix socket where a grpc.aio server listens). Streams go to
  ``default_target`` unless a *knock* is pending: :meth:`YamuxServeBridge.knock`
  routes the next accepted stream to the target registered for that id, which is how
  go-plugin's muxers hand brokered connections to the right server.
* :class:`YamuxDialBridge` listens on a private unix socket; every connection made to
  it (by a grpc.aio channel pointed at :attr:`YamuxDialBridge.target`) opens a new yamux
  stream, optionally after an awaited ``before_open`` hook (the broker's knock),
  serialised so that knocks and opens pair up in order.

Both are async context managers: leaving them stops accepting, aborts the spliced
connections still running (the yamux side is reset) and removes the socket files.
They run wherever the session runs (asyncio or trio); grpc.aio itself needs asyncio.

The pieces live in private modules (:mod:`._yamux_splice`, :mod:`._yamux_serve`,
:mod:`._yamux_dial`, :mod:`._yamux_muxer`); this module is where they are imported from.
"""

from __future__ import annotations

from ._yamux_dial import YamuxDialBridge
from ._yamux_muxer import GoPluginMuxer
from ._yamux_serve import YamuxServeBridge
from ._yamux_splice import NoRouteError, Target, splice

__all__ = [
    "GoPluginMuxer",
    "NoRouteError",
    "Target",
    "YamuxDialBridge",
    "YamuxServeBridge",
    "splice",
]
