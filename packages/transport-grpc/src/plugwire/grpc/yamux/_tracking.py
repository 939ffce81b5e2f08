"""Stream bookkeeping of a yamux session: opens in flight, open and close timers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ._config import YamuxConfig
from ._errors import YamuxTimeoutError
from ._frame import GoAwayCode
from ._stream import YamuxStream

__all__ = ["StreamTracking"]

logger = logging.getLogger("plugwire.grpc.yamux")


class StreamTracking:
    """Mixin of :class:`~._session.Session`: which streams are registered, how many
    opened streams still wait for the peer's ACK (``accept_backlog`` bounds them), and
    the timers that end a stream never acknowledged or never finished by the peer."""

    _config: YamuxConfig
    _name: str | None
    _closed: bool
    _streams: dict[int, YamuxStream]
    _inflight_count: int
    _open_waiter_event: anyio.Event | None
    _tg: anyio.abc.TaskGroup | None

    if TYPE_CHECKING:

        def _begin_shutdown(
            self, error: BaseException | None, *, go_away: GoAwayCode | None
        ) -> None: ...

    def _forget(self, stream: YamuxStream) -> None:
        if self._streams.get(stream._id) is stream:
            del self._streams[stream._id]
        self._established(stream)
        stream._done.set()

    def _established(self, stream: YamuxStream) -> None:
        if stream._inflight:
            stream._inflight = False
            self._inflight_count -= 1
            self._wake_openers()
        stream._acked.set()

    def _wake_openers(self) -> None:
        event = self._open_waiter_event
        if event is not None:
            self._open_waiter_event = None
            event.set()

    def _start_close_timer(self, stream: YamuxStream) -> None:
        if self._config.stream_close_timeout > 0 and self._tg is not None and not self._closed:
            self._tg.start_soon(self._close_timer, stream)

    async def _open_timer(self, stream: YamuxStream) -> None:
        with anyio.move_on_after(self._config.stream_open_timeout):
            await stream._acked.wait()
        if not stream._acked.is_set() and not self._closed and not stream._done.is_set():
            logger.error(
                "yamux: stream %d not acknowledged within %s s, closing the session",
                stream._id,
                self._config.stream_open_timeout,
            )
            self._begin_shutdown(
                YamuxTimeoutError(
                    "yamux stream open not acknowledged",
                    peer=self._name,
                    step=f"yamux stream {stream._id}",
                    expected=f"an ACK within {self._config.stream_open_timeout} s",
                ),
                go_away=None,
            )

    async def _close_timer(self, stream: YamuxStream) -> None:
        with anyio.move_on_after(self._config.stream_close_timeout):
            await stream._done.wait()
        if not stream._done.is_set() and not self._closed:
            logger.warning(
                "yamux: stream %d half-closed for %s s without the peer's FIN, resetting it",
                stream._id,
                self._config.stream_close_timeout,
            )
            stream.reset()
