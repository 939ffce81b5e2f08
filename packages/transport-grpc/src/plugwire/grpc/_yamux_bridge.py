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
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel

from plugwire.core.errors import ClosedError, ConfigError, PlugwireError

from .yamux import Session, YamuxConfig, YamuxStream
from .yamux._sockets import shutdown_socket

__all__ = [
    "GoPluginMuxer",
    "NoRouteError",
    "Target",
    "YamuxDialBridge",
    "YamuxServeBridge",
    "splice",
]

logger = logging.getLogger("plugwire.grpc.yamux.bridge")

#: Where a bridged stream goes: a unix socket path, or an async function that connects.
Target = str | os.PathLike[str] | Callable[[], Awaitable[anyio.abc.ByteStream]]

_CHUNK = 256 * 1024


class NoRouteError(PlugwireError, LookupError):
    """A knock named an id that has no registered target (go-plugin's wording,
    ``no listener for id N``, is the message: send it back in the knock ack)."""


async def _connect(target: Target) -> anyio.abc.ByteStream:
    if callable(target):
        return await target()
    return await anyio.connect_unix(os.fspath(target))


async def _interrupt(stream: anyio.abc.ByteStream) -> None:
    # End the stream so that a receive pending on it (in the other direction's task)
    # returns: reset a yamux stream, shut a socket down, or close anything else.
    if isinstance(stream, YamuxStream):
        stream.reset()
    elif not shutdown_socket(stream):
        await anyio.aclose_forcefully(stream)


async def _abort_pair(a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
    await _interrupt(a)
    await _interrupt(b)


async def splice(a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
    """Copy ``a`` -> ``b`` and ``b`` -> ``a`` until both directions reached EOF (each
    EOF is passed on as a half-close), then close both. If either side fails, or the
    splice is cancelled, a yamux side is reset and both are closed. Never raises
    for I/O errors (they are logged at debug level)."""
    failed = False

    async def copy(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        nonlocal failed
        try:
            while True:
                try:
                    chunk = await source.receive(_CHUNK)
                except anyio.EndOfStream:
                    break
                await sink.send(chunk)
            await sink.send_eof()
        except Exception as exc:  # any I/O error on either side ends the pair
            if not failed:
                failed = True
                logger.debug("bridged connection aborted: %r", exc)
                await _abort_pair(a, b)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, a, b)
            tg.start_soon(copy, b, a)
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            await _abort_pair(a, b)
        # Both copies have ended: nothing is reading any more, closing is safe.
        await anyio.aclose_forcefully(a)
        await anyio.aclose_forcefully(b)


class _Bridge:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._tg: anyio.abc.TaskGroup | None = None
        self._pairs: set[tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]] = set()
        self._idle: anyio.Event | None = None

    @property
    def active_connections(self) -> int:
        """Spliced connections still running."""
        return len(self._pairs)

    async def _splice(self, a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
        pair = (a, b)
        self._pairs.add(pair)
        try:
            await splice(a, b)
        finally:
            self._pairs.discard(pair)
            if not self._pairs and self._idle is not None:
                self._idle.set()

    async def _start(self) -> anyio.abc.TaskGroup:
        if self._tg is not None:
            raise ClosedError("a yamux bridge can be entered only once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return tg

    async def _stop(self) -> None:
        assert self._tg is not None
        with anyio.CancelScope(shield=True):
            if self._pairs:
                # Interrupt the splices and let them end on their own: cancelling
                # their socket reads instead can race (see shutdown_socket).
                self._idle = anyio.Event()
                for a, b in list(self._pairs):
                    await _abort_pair(a, b)
                with anyio.move_on_after(5):
                    await self._idle.wait()
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)


class YamuxServeBridge(_Bridge):
    """Accept every stream of ``session`` and splice it to a target connection.

    A stream goes to the target of the oldest pending :meth:`knock`, else to
    ``default_target``; with neither it is reset. A target that cannot be connected
    resets the stream (logged). Use as ``async with YamuxServeBridge(...) as bridge``;
    it stops when the block ends or the session ends (:meth:`wait_closed`).
    """

    def __init__(
        self,
        session: Session,
        default_target: Target | None = None,
        *,
        routes: dict[int, Target] | None = None,
    ) -> None:
        super().__init__(session)
        self._default = default_target
        self._routes: dict[int, Target] = dict(routes or {})
        self._knocks: deque[int] = deque()
        self._accepting_done = anyio.Event()

    def add_route(self, service_id: int, target: Target) -> None:
        """Send streams knocked for ``service_id`` to ``target``."""
        self._routes[service_id] = target

    def remove_route(self, service_id: int) -> None:
        self._routes.pop(service_id, None)
        while service_id in self._knocks:
            self._knocks.remove(service_id)

    def knock(self, service_id: int) -> None:
        """Route the next accepted stream to ``service_id``'s target. Raises
        :class:`NoRouteError` (``no listener for id N``) when it has none."""
        if service_id not in self._routes:
            raise NoRouteError(
                f"no listener for id {service_id}",
                step="yamux knock",
                expected=f"one of {sorted(self._routes)}",
                seen=service_id,
            )
        self._knocks.append(service_id)

    async def wait_closed(self) -> None:
        """Wait until the session stopped delivering streams."""
        await self._accepting_done.wait()

    async def __aenter__(self) -> YamuxServeBridge:
        tg = await self._start()
        tg.start_soon(self._accept_loop, name="yamux serve bridge")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    def _route(self, stream: YamuxStream) -> Target | None:
        while self._knocks:
            service_id = self._knocks.popleft()
            target = self._routes.get(service_id)
            if target is not None:
                logger.debug("stream %d goes to broker id %d", stream.stream_id, service_id)
                return target
        return self._default

    async def _accept_loop(self) -> None:
        assert self._tg is not None
        try:
            async for stream in self._session:
                target = self._route(stream)
                if target is None:
                    logger.warning(
                        "yamux stream %d arrived with no knock and no default target: reset",
                        stream.stream_id,
                    )
                    stream.reset()
                    continue
                self._tg.start_soon(self._serve_one, stream, target)
        finally:
            self._accepting_done.set()

    async def _serve_one(self, stream: YamuxStream, target: Target) -> None:
        try:
            conn = await _connect(target)
        except (OSError, PlugwireError) as exc:
            logger.warning("yamux stream %d: cannot reach %r: %s", stream.stream_id, target, exc)
            stream.reset()
            return
        await self._splice(stream, conn)


class YamuxDialBridge(_Bridge):
    """A private unix socket whose every connection opens a new yamux stream.

    Point a grpc.aio channel at :attr:`target` (``unix:/tmp/pw-yx-.../dial.sock``).
    ``before_open`` (if given) is awaited before each open, under ``lock`` (a private
    lock by default; share one between bridges to serialise all dials as go-plugin's
    broker does); if it raises, that connection is closed and nothing is opened.
    """

    def __init__(
        self,
        session: Session,
        *,
        before_open: Callable[[], Awaitable[None]] | None = None,
        lock: anyio.Lock | None = None,
        directory: str | None = None,
    ) -> None:
        super().__init__(session)
        self._before_open = before_open
        self._lock = lock or anyio.Lock()
        self._directory = directory
        self._tmpdir: str | None = None
        self._path: str | None = None
        self._listener: anyio.abc.SocketListener | None = None

    @property
    def path(self) -> str:
        """The unix socket path (valid inside the ``async with`` block)."""
        if self._path is None:
            raise ClosedError("the yamux dial bridge is not running")
        return self._path

    @property
    def target(self) -> str:
        """The gRPC target for this bridge: ``unix:<path>``."""
        return f"unix:{self.path}"

    async def __aenter__(self) -> YamuxDialBridge:
        self._tmpdir = tempfile.mkdtemp(prefix="pw-yx-", dir=self._directory)
        path = os.path.join(self._tmpdir, "dial.sock")
        try:
            self._listener = await anyio.create_unix_listener(path, mode=0o600)
            tg = await self._start()
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self._path = path
        tg.start_soon(self._accept_loop, self._listener, name="yamux dial bridge")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._stop()
        finally:
            self._path = None
            if self._listener is not None:
                await anyio.aclose_forcefully(self._listener)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    async def _accept_loop(self, listener: anyio.abc.SocketListener) -> None:
        assert self._tg is not None
        while True:
            conn = await listener.accept()
            self._tg.start_soon(self._dial_one, conn)

    async def _dial_one(self, conn: anyio.abc.SocketStream) -> None:
        try:
            async with self._lock:
                if self._before_open is not None:
                    await self._before_open()
                stream = await self._session.open_stream()
        except Exception as exc:
            logger.warning("yamux dial bridge: cannot open a stream: %s", exc)
            await anyio.aclose_forcefully(conn)
            return
        await self._splice(conn, stream)


class GoPluginMuxer:
    """The yamux half of go-plugin's gRPC broker multiplexing (``PLUGIN_MULTIPLEX_GRPC``),
    mirroring go-plugin's ``internal/grpcmux`` for grpc.aio.

    ``conn`` is the one connection between host and plugin: the host dialled it, the
    plugin accepted it on its announced listener (and accepts no other). The host is
    the yamux client, the plugin the yamux server; both use :class:`YamuxConfig`'s
    defaults (= ``yamux.DefaultConfig()``), as go-plugin does.

    * Plugin side (``plugin=True``): streams without a pending knock are spliced to
      ``main_target``, the unix socket of the plugin's main grpc.aio server (plugin
      services, GRPCBroker, GRPCController, GRPCStdio, health).
    * Host side (``plugin=False``): :attr:`main_channel_target` is the gRPC target for the
      host's main channel; each connection grpc makes to it opens a yamux stream.
    * Broker ``Accept(id)`` (either side): :meth:`listen` registers the unix socket of the
      grpc.aio server for ``id``; when the peer's knock for ``id`` arrives on the broker
      stream, call :meth:`accept_knock` and send its result as ``knock.error`` in the
      ``{knock: true, ack: true}`` reply.
    * Broker ``Dial(id)`` (either side): :meth:`dial_target` returns a gRPC target whose
      every connection first awaits ``knock(id)`` (send the knock, wait up to 5 s for
      the ack, raise if it carries an error) and then opens a yamux stream; all dials
      of one muxer are serialised, like go-plugin's ``dialMutex``.

    TLS, if any, is configured on the grpc.aio servers and channels: it runs inside each
    yamux stream, end to end, exactly as go-plugin runs it.
    """

    def __init__(
        self,
        conn: anyio.abc.ByteStream,
        *,
        plugin: bool,
        main_target: Target | None = None,
        config: YamuxConfig | None = None,
        name: str | None = None,
        directory: str | None = None,
    ) -> None:
        if plugin and main_target is None:
            raise ConfigError(
                "the plugin side of a go-plugin muxer needs the main server's target",
                step="yamux muxer",
                expected="main_target",
            )
        self._plugin = plugin
        self._directory = directory
        self._session = Session(conn, client=not plugin, config=config, name=name)
        self._serve = YamuxServeBridge(self._session, main_target if plugin else None)
        self._dial_lock = anyio.Lock()
        self._dials: dict[int, tuple[YamuxDialBridge, anyio.Event]] = {}
        self._main_dial: YamuxDialBridge | None = None
        self._stack = AsyncExitStack()
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def session(self) -> Session:
        return self._session

    @property
    def main_channel_target(self) -> str:
        """Host side: the gRPC target (``unix:...``) of the main connection."""
        if self._main_dial is None:
            raise ClosedError("only the host side of a running muxer has a main channel")
        return self._main_dial.target

    async def __aenter__(self) -> GoPluginMuxer:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self._session)
            await stack.enter_async_context(self._serve)
            if not self._plugin:
                self._main_dial = await stack.enter_async_context(
                    YamuxDialBridge(self._session, lock=self._dial_lock, directory=self._directory)
                )
            # Dial bridges made later live in tasks of this group, so that their
            # cancel scopes never straddle the caller's.
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._tg.cancel_scope.cancel)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._dials.clear()
        await self._stack.aclose()

    def listen(self, service_id: int, target: Target) -> None:
        """Broker ``Accept(id)``: knocked streams for ``service_id`` go to ``target``."""
        self._serve.add_route(service_id, target)

    def unlisten(self, service_id: int) -> None:
        """The listener for ``service_id`` closed: later knocks for it fail."""
        self._serve.remove_route(service_id)

    def accept_knock(self, service_id: int) -> str:
        """A knock for ``service_id`` arrived: route the next stream there. Returns the
        text for the ack's ``error`` field: empty on success, else go-plugin's
        ``no listener for id N``."""
        try:
            self._serve.knock(service_id)
        except NoRouteError as exc:
            return exc.message
        return ""

    async def dial_target(self, service_id: int, knock: Callable[[int], Awaitable[None]]) -> str:
        """Broker ``Dial(id)``: the gRPC target for a channel to the peer's ``service_id``
        (one bridge per id, closed with the muxer or by :meth:`close_dial`)."""
        entry = self._dials.get(service_id)
        if entry is None:

            async def before_open() -> None:
                await knock(service_id)

            entry = self._dials[service_id] = await self._start_dial(before_open)
        return entry[0].target

    async def open_dial(
        self, before_open: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[str, Callable[[], Awaitable[None]]]:
        """A dial bridge of its own (e.g. for one broker channel): returns its gRPC
        target and an async function that closes it (idempotent; the muxer's exit
        closes it too). Each connection awaits ``before_open`` first, serialised with
        every other dial of this muxer."""
        bridge, stop = await self._start_dial(before_open)

        async def close() -> None:
            stop.set()
            await anyio.lowlevel.checkpoint()

        return bridge.target, close

    async def _start_dial(
        self, before_open: Callable[[], Awaitable[None]] | None
    ) -> tuple[YamuxDialBridge, anyio.Event]:
        if self._tg is None or self._session.closed:
            raise ClosedError("the go-plugin muxer is not running")
        bridge = YamuxDialBridge(
            self._session, before_open=before_open, lock=self._dial_lock, directory=self._directory
        )
        stop = anyio.Event()
        await self._tg.start(self._run_dial_bridge, bridge, stop)
        return bridge, stop

    async def close_dial(self, service_id: int) -> None:
        """Close the dial bridge for ``service_id`` (its connections are aborted)."""
        entry = self._dials.pop(service_id, None)
        if entry is not None:
            entry[1].set()
        await anyio.lowlevel.checkpoint()

    @staticmethod
    async def _run_dial_bridge(
        bridge: YamuxDialBridge,
        stop: anyio.Event,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async with bridge:
            task_status.started()
            await stop.wait()
