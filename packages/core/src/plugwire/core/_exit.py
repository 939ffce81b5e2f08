"""Seeing a plugin child exit, and saying how it did (for :mod:`plugwire.core.process`)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

import anyio

__all__ = ["describe_exit", "wait_exit"]


async def wait_exit(pid: int, poll: Callable[[], int | None]) -> None:
    """Wait until the child ``pid`` has exited and ``poll()`` (which reaps it) returns
    its status: through a Linux pidfd, or by polling without one."""
    pidfd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
    try:
        if pidfd is not None:
            await anyio.wait_readable(pidfd)
        while poll() is None:  # noqa: ASYNC110  (no pidfd before Linux 5.3: poll)
            await anyio.sleep(0.02)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def describe_exit(returncode: int | None) -> str:
    """``"exited with status 1"``, ``"was killed by SIGKILL"``, ``"is still running"``."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
