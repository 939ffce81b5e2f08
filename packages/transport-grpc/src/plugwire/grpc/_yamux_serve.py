"""The serve bridge: every stream a yamux session accepts, spliced to a target."""

from __future__ import annotations

import logging
from collections import deque
from types import TracebackType

import anyio

from plugwire.core.errors import PlugwireError

from ._yamux_splice import BridgeBase, NoRouteError, Target, connect_target
from .yamux import Session, YamuxStream

__all__ = ["YamuxServeBridge"]

logger = logging.getLogger("plugwire.grpc.yamux.bridge")


class YamuxServeBridge(BridgeBase):
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
            conn = await connect_target(target)
        except (OSError, PlugwireError) as exc:
            logger.warning("yamux stream %d: cannot reach %r: %s", stream.stream_id, target, exc)
            stream.reset()
            return
        await self._splice(stream, conn)
