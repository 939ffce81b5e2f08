"""A small blocking façade for programs that are not async.

:class:`BlockingHost` runs a :class:`~plugwire.core.host.Host` on an event loop in a
background thread (an :func:`anyio.from_thread.start_blocking_portal`) and exposes
plain methods. Plugins are forked from that loop thread, which lives as long as the
``BlockingHost``, so the no-orphan guarantee holds.

>>> with BlockingHost() as host:                       # doctest: +SKIP
...     proc = host.launch("echo", ["cat"], env={}, stdin=True)
...     host.call(proc.write_stdin, b"hi\\n")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .host import Host
from .process import PluginProcess

__all__ = ["BlockingHost", "run"]

T = TypeVar("T")


def run(func: Callable[..., Awaitable[T]], *args: object, backend: str = "asyncio") -> T:
    """Run one async function to completion from blocking code (``anyio.run``)."""
    import anyio

    return anyio.run(func, *args, backend=backend)


class BlockingHost:
    """A :class:`Host` driven from blocking code."""

    def __init__(
        self, name: str = "host", *, backend: str = "asyncio", **host_options: Any
    ) -> None:
        self._host = Host(name, **host_options)
        self._backend = backend
        self._stack = contextlib.ExitStack()
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> BlockingHost:
        self._portal = self._stack.enter_context(start_blocking_portal(self._backend))
        self._stack.enter_context(self._portal.wrap_async_context_manager(self._host))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)
        self._portal = None

    @property
    def host(self) -> Host:
        return self._host

    def call(self, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """Run ``func(*args)`` on the host's loop and return its result."""
        if self._portal is None:
            from .errors import ClosedError

            raise ClosedError("BlockingHost is not entered", step="call")
        return self._portal.call(func, *args)

    def launch(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        **options: Any,
    ) -> PluginProcess:
        """:meth:`Host.launch` from blocking code."""

        async def _launch() -> PluginProcess:
            return await self._host.launch(name, argv, env=env, **options)

        return self.call(_launch)

    def close(self, name: str) -> None:
        self.call(self._host.close, name)
