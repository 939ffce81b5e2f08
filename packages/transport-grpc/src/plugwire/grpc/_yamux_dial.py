"""The dial bridge: a private unix socket whose every connection opens a yamux stream."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
import anyio.abc

from plugwire.core._unix import UnixListener, create_unix_listener
from plugwire.core.errors import ClosedError

from ._tlsproxy import peer_pid
from ._yamux_splice import BridgeBase
from .yamux import Session

__all__ = ["YamuxDialBridge"]

logger = logging.getLogger("plugwire.grpc.yamux.bridge")


class YamuxDialBridge(BridgeBase):
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
        self._listener: UnixListener | None = None

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
            self._listener = await create_unix_listener(path, mode=0o600)
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

    async def _accept_loop(self, listener: UnixListener) -> None:
        assert self._tg is not None
        while True:
            conn = await listener.accept()
            self._tg.start_soon(self._dial_one, conn)

    async def _dial_one(self, conn: anyio.abc.SocketStream) -> None:
        # Only the grpc channel of this process may open streams to the peer.
        if peer_pid(conn.extra(anyio.abc.SocketAttribute.raw_socket, None)) != os.getpid():
            logger.warning("yamux dial bridge: refused a connection from another process")
            await anyio.aclose_forcefully(conn)
            return
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
