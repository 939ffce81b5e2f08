"""grpc.aio runs only on asyncio: refuse anything else with a clear error."""

from __future__ import annotations

import asyncio

from plugwire.core.errors import TransportNotAvailableError

__all__ = ["require_asyncio"]


def require_asyncio(what: str = "plugwire.grpc") -> asyncio.AbstractEventLoop:
    """Return the running asyncio loop, or raise :class:`TransportNotAvailableError`.

    grpc.aio is built on asyncio; under trio (or outside any event loop) there is no
    asyncio loop to run it on.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        backend = "trio" if _trio_running() else "no event loop"
        raise TransportNotAvailableError(
            f"{what} needs the asyncio backend: grpc.aio does not run on trio; run this code "
            "with anyio.run(..., backend='asyncio') or asyncio.run()",
            step="backend",
            expected="asyncio",
            seen=backend,
        ) from None


def _trio_running() -> bool:
    try:
        import trio
    except ImportError:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
