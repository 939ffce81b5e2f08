"""Work done ahead in a forked helper process while this one goes on: :func:`start`.

A plugin launch that imports spends most of its start-up in the interpreter's import
machinery, on one core. Work that does not need those imports (a launch's TLS
certificates, say) can run meanwhile on another core: :func:`start` forks a helper
that runs it and sends back the bytes it returns, and :meth:`Ahead.result` takes them
when the launch needs them.

The helper starts with stdio on ``/dev/null`` (it holds none of the host's pipes) and
dies with this process (``PR_SET_PDEATHSIG``); it never returns into the caller's code
and runs no exit handlers. Fork it before anything starts threads: only the forking
thread is copied. It imports nothing heavy (what
:mod:`plugwire.core.forkserver`, a launch's first import, does).
"""

from __future__ import annotations

import os

from .forkserver import _die_with_parent, _kill, _libc, _null_stdio

TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Ahead", "start"]


class Ahead:
    """A helper started by :func:`start`: its pid and the read end of its pipe."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd: int | None = fd

    def result(self, timeout: float) -> bytes | None:
        """The bytes the helper's work returned, waiting at most ``timeout`` seconds
        for them; None when it sent none in time (its work raised, it died, or it was
        too slow: the helper is killed then). Reaps the helper; a second call returns
        None."""
        import select
        import time

        fd = self._fd
        if fd is None:
            return None
        self._fd = None
        deadline = time.monotonic() + timeout
        data = bytearray()
        complete = False
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break  # too slow
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    complete = True
                    break
                data += chunk
        except OSError:
            pass  # not complete: killed below
        finally:
            os.close(fd)
        if not complete:
            _kill(self.pid)  # and reaped
            return None
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return None
        return bytes(data) if os.waitstatus_to_exitcode(status) == 0 else None


def start(work: Callable[[], bytes]) -> Ahead | None:
    """Fork a helper that runs ``work`` and sends back what it returns; None when no
    helper could be forked (no ``fork`` on this platform, or it failed: the caller then
    does the work itself)."""
    if not hasattr(os, "fork"):
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the helper
        status = 1
        try:
            os.close(read_end)
            _become_helper(parent)
            _write_all(write_end, work())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return Ahead(pid, read_end)


def _become_helper(parent: int) -> None:
    _null_stdio()
    _die_with_parent(_libc(), parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
