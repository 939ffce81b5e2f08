"""Yamux stream multiplexing (hashicorp/yamux, spec.md) on anyio, for asyncio and trio.

A :class:`Session` runs over one reliable byte stream and carries many
:class:`YamuxStream` objects, each an :class:`anyio.abc.ByteStream`::

    from plugwire.grpc import yamux

    async with yamux.client(await anyio.connect_unix(path)) as session:
        stream = await session.open_stream()
        await stream.send(b"ping")
        await stream.send_eof()
        reply = await stream.receive()

    async with yamux.server(conn) as session:
        async for stream in session:          # accept until the session ends
            tg.start_soon(handle, stream)

Wire compatibility with hashicorp/yamux v0.1.2 (the newest release) is proven by
tests/interop/yamux, which runs the Go implementation against this one in both roles.

Protocol summary (what this module implements)
----------------------------------------------
* Frame header (12 bytes, big endian): version ``0``, type (0 Data, 1 WindowUpdate,
  2 Ping, 3 GoAway), flags (SYN 1, ACK 2, FIN 4, RST 8), stream id, length.
* Client opens odd stream ids from 1, server even ids from 2; id 0 is the session.
  A stream opens with a WindowUpdate carrying SYN (data may follow before the ACK);
  the acceptor answers with a WindowUpdate carrying ACK when the application accepts
  it (:meth:`Session.accept_stream`). More than ``accept_backlog`` streams waiting to
  be accepted are reset (RST); :meth:`Session.open_stream` waits while
  ``accept_backlog`` of its own opens are unacknowledged.
* FIN half-closes (:meth:`YamuxStream.send_eof`); the stream is gone once both halves
  are closed. RST aborts (:meth:`YamuxStream.reset`). A duplicate FIN, a SYN for an
  open id or of the wrong parity, a data frame beyond the window, an unknown version or
  type are :class:`~plugwire.core.errors.ProtocolError`: GoAway PROTOCOL_ERROR is sent
  and the session ends.
* Flow control per stream: both sides start at 256 KiB; only Data bytes count. A
  receiver sends ``delta = (max_window - buffered) - current_window`` once that is at
  least half of ``max_stream_window_size`` (or with a pending SYN/ACK), exactly as
  upstream does, so a larger ``max_stream_window_size`` is advertised in the SYN/ACK.
* Ping (SYN asks, ACK answers with the same opaque value): :meth:`Session.ping`
  returns the RTT; keepalive pings every ``keepalive_interval``.
* GoAway: NORMAL (0) means "no new streams" (:meth:`Session.go_away`; later SYNs are
  answered with RST; :meth:`Session.open_stream` on the other side raises
  :class:`RemoteGoAwayError`); PROTOCOL_ERROR (1) and INTERNAL_ERROR (2) end the
  session. :meth:`Session.aclose` sends GoAway NORMAL and then closes the connection.

How hashicorp/go-plugin (v1.8.0) uses yamux for ``PLUGIN_MULTIPLEX_GRPC``
---------------------------------------------------------------------------
(from client.go, server.go, grpc_client.go, grpc_broker.go, internal/grpcmux/*.go)

* Negotiation: the host (``ClientConfig.GRPCBrokerMultiplex``) sets
  ``PLUGIN_MULTIPLEX_GRPC=true`` in the plugin's environment. A plugin that supports it
  appends a 7th field ``|true`` to its announce line, but only when the variable is
  set at all (``os.Getenv(...) != ""``); it multiplexes when the value parses as a Go
  bool that is true (``strconv.ParseBool``: 1, t, T, TRUE, true, True). The host
  requires the 7th field when it asked (missing -> ErrGRPCBrokerMuxNotSupported,
  not a bool -> parse error, ``false`` -> ErrGRPCBrokerMuxNotSupported). Multiplexing
  is refused together with Reattach. Only the gRPC protocol uses this (net/rpc always
  uses yamux through MuxBroker, a different scheme).
* Roles: the **host is the yamux client** (odd ids), the **plugin the yamux server**
  (even ids). The yamux session runs directly over the plugin's one listener
  connection (unix socket or TCP); the plugin listener accepts exactly one
  connection. TLS (AutoMTLS or user TLS) is *not* under yamux: gRPC runs TLS inside
  each yamux stream, as on a plain connection.
* Config on both sides: ``yamux.DefaultConfig()`` = :class:`YamuxConfig` defaults
  (backlog 256, keepalive on every 30 s, write timeout 10 s, window 256 KiB, stream
  open timeout 75 s, stream close timeout 5 min); only the logger is changed.
* Main connection: the host's gRPC ClientConn dials through the muxer: each gRPC
  (re)connect opens a new yamux stream from the host (the first is stream 1). The
  plugin's gRPC server (plugin services, GRPCBroker, GRPCController, GRPCStdio,
  health) is served on a listener whose ``Accept`` takes the next session stream and
  routes it to the main server **unless a knock is pending** (see below). The plugin
  waits at most 5 s for the host's connection before Accept fails.
* Broker ``Accept(id)`` / ``AcceptAndServe(id)`` with multiplexing: no new socket and
  no ConnInfo address is sent. The accepting side registers a listener for ``id`` and
  waits for knocks on the GRPCBroker ``StartStream`` stream.
* Broker ``Dial(id)``: serialised by a per-broker mutex, for each gRPC connect the
  dialer sends ``ConnInfo{service_id: id, knock: {knock: true}}`` on the broker stream
  and waits up to 5 s for ``ConnInfo{service_id: id, knock: {knock: true, ack: true,
  error: ""}}``; then it opens a new yamux stream and runs gRPC (with the broker's TLS
  config) over it. A non-empty ``error`` in the ack (e.g. ``no listener for id 7``)
  fails the dial.
* Knock receipt (``GRPCBroker.Run``): a ConnInfo with ``knock.knock && !knock.ack`` is
  a knock for a listener of this side; any other message (ConnInfo address or knock
  ack) goes to the dialer waiting for that id. The listener side answers the knock with
  the ack after marking "the next accepted yamux stream belongs to ``id``":
  on the plugin (yamux server) a buffered channel consulted by the main Accept loop;
  on the host (yamux client), which has no main server, the listener for ``id`` is
  unblocked and calls ``session.Accept()`` itself.
* Closing: the host's muxer ``Close`` closes the yamux session (and so the plugin's
  connection); the plugin closes its session when its server stops.

:mod:`plugwire.grpc._yamux_bridge` (names re-exported from :mod:`plugwire.grpc`)
connects these streams to grpc.aio (which cannot run over custom streams):
:class:`~plugwire.grpc.YamuxServeBridge` pipes accepted streams into unix sockets where
grpc.aio servers listen (with a default target and knock routing, as go-plugin's muxers
do), and :class:`~plugwire.grpc.YamuxDialBridge` is a unix socket for a grpc.aio
channel whose connections each open a yamux stream (optionally after a knock).
:class:`~plugwire.grpc.GoPluginMuxer` puts them together as go-plugin's ``GRPCMuxer``;
``serve()`` and ``Client`` use it (through :mod:`plugwire.grpc.goplugin._mux`) as follows:

* plugin: accept the one connection on the announced listener, then
  ``GoPluginMuxer(conn, plugin=True, main_target=<unix socket of the main grpc.aio
  server>)``; announce ``...|<cert>|true`` when ``PLUGIN_MULTIPLEX_GRPC`` is set.
* host: dial the announced address once, then ``GoPluginMuxer(conn, plugin=False)``
  and open the main channel on ``muxer.main_channel_target``.
* broker ``Accept(id)``: serve grpc.aio on a private unix socket, ``muxer.listen(id,
  path)``; on a received knock, reply ``{knock, ack, error: muxer.accept_knock(id)}``.
* broker ``Dial(id)``: a channel to the target of ``await muxer.open_dial(knock)`` (a
  bridge per channel, closed with it; ``muxer.dial_target(id, knock)`` shares one
  bridge per id instead), where ``knock`` sends ``{service_id: id, knock: {knock:
  true}}`` and waits (5 s) for the ack, raising if it carries an error.

Caveat (anyio on asyncio, unix sockets): cancelling or closing a stream while another
task is in ``receive()`` can make a reader callback raise ``InvalidStateError``; this
module and the bridges interrupt such reads with ``shutdown()`` instead.
"""

from __future__ import annotations

from ._config import YamuxConfig
from ._errors import (
    RemoteGoAwayError,
    SessionClosedError,
    StreamClosedError,
    StreamResetError,
    StreamsExhaustedError,
    YamuxTimeoutError,
)
from ._frame import (
    HEADER_SIZE,
    INITIAL_STREAM_WINDOW,
    PROTOCOL_VERSION,
    Flag,
    FrameHeader,
    FrameType,
    GoAwayCode,
    decode_header,
    encode_header,
)
from ._session import Session, client, server
from ._stream import StreamState, YamuxStream

__all__ = [
    "HEADER_SIZE",
    "INITIAL_STREAM_WINDOW",
    "PROTOCOL_VERSION",
    "Flag",
    "FrameHeader",
    "FrameType",
    "GoAwayCode",
    "RemoteGoAwayError",
    "Session",
    "SessionClosedError",
    "StreamClosedError",
    "StreamResetError",
    "StreamState",
    "StreamsExhaustedError",
    "YamuxConfig",
    "YamuxStream",
    "YamuxTimeoutError",
    "client",
    "decode_header",
    "encode_header",
    "server",
]
