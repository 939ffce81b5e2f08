"""go-plugin's gRPC broker multiplexing over yamux: :class:`GoPluginMuxer`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel

from plugwire.core.errors import ClosedError, ConfigError

from ._yamux_dial import YamuxDialBridge
from ._yamux_serve import YamuxServeBridge
from ._yamux_splice import NoRouteError, Target
from .yamux import Session, YamuxConfig

__all__ = ["GoPluginMuxer"]


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
