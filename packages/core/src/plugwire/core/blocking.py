"""The blocking façade: every family's host side, from code that is not async.

:class:`BlockingHost` runs a :class:`~plugwire.core.host.Host` on an event loop in a
background thread (an :func:`anyio.from_thread.start_blocking_portal`).
:meth:`BlockingHost.launch` takes a plugin handle of any family and returns a
:class:`BlockingPlugin`: the same object, whose coroutine methods become plain
methods run on the host's loop. Plugins are forked from that loop thread, which lives
as long as the ``BlockingHost``, so the no-orphan guarantee holds.

>>> with BlockingHost() as host:                                       # doctest: +SKIP
...     cat = host.launch(ProcessPlugin("cat", ["cat"], env={}, stdin=True))
...     cat.process.write_stdin(b"hi\\n")      # a coroutine method, called plainly
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .errors import ClosedError
from .handle import PluginHandle
from .host import Host

__all__ = ["BlockingHost", "BlockingPlugin", "run"]

T = TypeVar("T")
H = TypeVar("H", bound=PluginHandle)


def run(func: Callable[..., Awaitable[T]], *args: object, backend: str = "asyncio") -> T:
    """Run one async function to completion from blocking code (``anyio.run``)."""
    import anyio

    return anyio.run(func, *args, backend=backend)


class _Blocking:
    """Wraps any object so its coroutine methods run through a portal."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: object, portal: BlockingPortal) -> None:
        target = _unwrap(target)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_portal", portal)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            portal = self._portal

            async def on_loop(*args: Any, **kwargs: Any) -> Any:
                args = tuple(_unwrap(a) for a in args)
                kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
                result = value(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

            @functools.wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                # Run on the loop thread (grpc.aio stubs, anyio objects need it) and
                # wait for what the call returns when it is awaitable.
                result = portal.call(functools.partial(on_loop, *args, **kwargs))
                return _Blocking(result, portal) if _wrappable(result) else result

            return call
        if _wrappable(value):
            return _Blocking(value, self._portal)
        return value

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


def _unwrap(value: object) -> Any:
    """The async object behind a wrapper (wrappers must not reach the loop thread)."""
    while isinstance(value, _Blocking):
        value = object.__getattribute__(value, "_target")
    return value


def _wrappable(value: object) -> bool:
    # Objects with coroutine methods of their own (a PluginProcess, a stub...).
    if value is None or isinstance(value, (str, bytes, int, float, bool, tuple, list, dict)):
        return False
    return any(
        inspect.iscoroutinefunction(getattr(type(value), attr, None))
        for attr in dir(type(value))
        if not attr.startswith("__")
    )


class BlockingPlugin(_Blocking, Generic[H]):
    """A plugin handle whose coroutine methods are plain methods (see module docs).

    :attr:`handle` is the async handle itself.
    """

    __slots__ = ()

    @property
    def handle(self) -> H:
        target: H = self._target
        return target


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

    @property
    def portal(self) -> BlockingPortal:
        if self._portal is None:
            raise ClosedError("BlockingHost is not entered", step="call")
        return self._portal

    def call(self, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """Run ``func(*args)`` on the host's loop and return its result (wrapped
        objects among ``args`` are handed over unwrapped)."""
        return self.portal.call(func, *(_unwrap(a) for a in args))

    def launch(self, plugin: H) -> BlockingPlugin[H]:
        """:meth:`Host.launch` from blocking code; the plugin comes back wrapped."""
        self.call(self._host.launch, plugin)
        return BlockingPlugin(plugin, self.portal)

    def enter(
        self,
        resource: AbstractAsyncContextManager[T] | Callable[[], AbstractAsyncContextManager[T]],
    ) -> Any:
        """Enter an async context manager (a family host such as ``CipdHost`` or the
        NRI ``Runtime``) on the host's loop until this ``BlockingHost`` exits; returns
        what it yields, wrapped so its coroutine methods are plain methods.

        Objects that need a running loop to be built (anyio locks and events in their
        ``__init__``) can be given as a factory, called on the loop:
        ``host.enter(lambda: Runtime(...))``.
        """
        if not hasattr(resource, "__aenter__") and callable(resource):
            factory = resource

            async def build() -> AbstractAsyncContextManager[T]:
                return factory()

            resource = self.portal.call(build)
        assert not callable(resource) or hasattr(resource, "__aenter__")
        value = self._stack.enter_context(
            self.portal.wrap_async_context_manager(resource)  # type: ignore[arg-type]
        )
        return _Blocking(value, self.portal) if _wrappable(value) else value

    def wrap(self, obj: object) -> Any:
        """``obj`` with its coroutine methods run on the host's loop."""
        return _Blocking(obj, self.portal)

    def close(self, plugin: str | PluginHandle) -> None:
        """:meth:`Host.close` from blocking code."""
        if isinstance(plugin, BlockingPlugin):
            plugin = plugin.handle
        self.call(self._host.close, plugin)
