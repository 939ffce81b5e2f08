"""Ending a plugin process at once: exit handlers yes, interpreter teardown no."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["exit_process"]

before_exit: Callable[[int], None] | None = None
"""Called with the exit code as the very last step before the process ends; set in a
child of :mod:`plugwire.core.forkserver` (which tells its launch the status at once).
Its errors are ignored."""


def exit_process(code: int) -> NoReturn:
    """Flush stdout and stderr, run the exit handlers (:mod:`atexit`, logging's
    flush among them), then end the process with ``code`` without the interpreter's
    teardown.

    A plugin that has served holds a large heap of grpc, protobuf and provider objects;
    freeing them one by one at exit took 10-20 ms a launch here (more in a child forked
    from :mod:`plugwire.core.forkserver`, where every freed object's page is copied
    first), and the host (Terraform, once per provider launch) waits for the exit.
    As with a go-plugin Go plugin returning from ``Serve``, threads still running are
    not waited for.
    """
    _flush()
    try:
        atexit._run_exitfuncs()
    finally:
        _flush()
        if before_exit is not None:
            try:
                before_exit(code)
            except BaseException:  # the process ends with ``code`` regardless
                pass
        os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
