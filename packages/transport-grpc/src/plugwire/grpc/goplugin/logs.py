"""Plugin logging: stdlib ``logging`` emitted as hclog JSON on stderr.

go-plugin hosts parse each stderr line of their plugin; hclog JSON lines keep
their level, message and fields. :func:`configure_plugin_logging` installs a handler
with :class:`GoHclogFormatter` on the root logger: each record is the line a Go
plugin's hclog JSON logger writes (``@level``, ``@message``, ``@module``,
``@timestamp`` in hclog's time format, then the plain key/values of ``extra``, keys
sorted as Go's ``encoding/json`` writes a map), so a Go host shows it as it shows a
Go plugin's record: ``plugin.NAME: plugin address: address=... network=unix
timestamp=...`` (the ``timestamp=`` is the host's own addition, for every plugin).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any, TextIO

from plugwire.core.logs import HclogFormatter

__all__ = ["TRACE", "UNNAMED_LOGGERS", "GoHclogFormatter", "configure_plugin_logging"]

#: hclog's TRACE level, below DEBUG.
TRACE = 5

#: Loggers that play go-plugin's own, unnamed server logger: their records carry no
#: ``@module``, like the Go server's ("plugin address", "plugin shutting down").
UNNAMED_LOGGERS = frozenset({"root", "plugwire.grpc.goplugin.server"})


def hclog_time(created: float) -> str:
    """hclog's JSON time format, ``2006-01-02T15:04:05.000000Z07:00``, local time."""
    when = _dt.datetime.fromtimestamp(created).astimezone()
    offset = when.utcoffset() or _dt.timedelta(0)
    if not offset:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone


class GoHclogFormatter(HclogFormatter):
    """One record as the JSON line go-hclog writes (see the module docs).

    Fields come from ``extra`` (``log.info("put", extra={"key": k})``), never from
    inside the message. Values JSON cannot encode are written as their ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = json.loads(super().format(record))
        obj["@timestamp"] = hclog_time(record.created)
        if record.name in UNNAMED_LOGGERS:
            obj.pop("@module", None)
        return json.dumps(obj, default=str, sort_keys=True, separators=(",", ":"))


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
    handler.setFormatter(GoHclogFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    grpc_logger = logging.getLogger("grpc")
    if grpc_logger.level == logging.NOTSET:
        # grpc.aio logs every loop hand-off at DEBUG: keep the host's view useful.
        grpc_logger.setLevel(logging.WARNING)
    return handler
