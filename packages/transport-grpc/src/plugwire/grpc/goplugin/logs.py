"""Plugin logging: stdlib ``logging`` emitted as hclog JSON on stderr.

go-plugin hosts parse each stderr line of their plugin; hclog JSON lines keep
their level, message and fields. :func:`configure_plugin_logging` installs a handler
with :class:`plugwire.core.logs.HclogFormatter` on the root logger.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from plugwire.core.logs import HclogFormatter

__all__ = ["TRACE", "configure_plugin_logging"]

#: hclog's TRACE level, below DEBUG.
TRACE = 5


class _PluginLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks plugwire's own handler so it is installed once."""


def configure_plugin_logging(
    level: int = logging.DEBUG, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send root-logger records as hclog JSON lines to ``stream`` (default: current stderr).

    Capture ``stream`` before stdio is redirected: it must be the process's real
    stderr, which the host parses. Idempotent: a second call replaces the handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _PluginLogHandler):
            root.removeHandler(handler)
    handler = _PluginLogHandler(stream or sys.stderr)
    handler.setFormatter(HclogFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    grpc_logger = logging.getLogger("grpc")
    if grpc_logger.level == logging.NOTSET:
        # grpc.aio logs every loop hand-off at DEBUG: keep the host's view useful.
        grpc_logger.setLevel(logging.WARNING)
    return handler
