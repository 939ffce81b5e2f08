"""Plugin log lines in, hclog JSON out.

:func:`parse_log_line` turns one stderr line of a plugin into ``(level, message,
fields)``: hclog JSON lines (``@level``, ``@message``, ``@timestamp``, ``@module`` plus
fields) and ``[LEVEL]``-prefixed text lines are understood; anything else is a
DEBUG line, as go-plugin does. :class:`HclogFormatter` writes stdlib ``logging``
records as hclog JSON so a go-plugin host shows levels and fields.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from typing import Any

__all__ = ["HclogFormatter", "forward_log_line", "parse_log_line"]

_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}
_PREFIX = re.compile(r"^\s*\[(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)\]\s?(.*)$", re.I)
_RESERVED = {"@level", "@message", "@timestamp", "@module", "@caller"}


def level_number(name: str) -> int:
    """``"warn"`` -> ``logging.WARNING``; unknown names map to DEBUG."""
    return _LEVELS.get(name.strip().lower(), logging.DEBUG)


def parse_log_line(line: str) -> tuple[int, str, dict[str, Any]]:
    """Parse one plugin stderr line into ``(level, message, fields)``.

    Fields of hclog JSON lines keep their names; ``@timestamp`` and ``@module`` are
    returned as ``timestamp`` and ``module``.
    """
    text = line.rstrip("\r\n")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):  # deep nesting: not a log record
            obj = None
        if isinstance(obj, dict) and ("@message" in obj or "@level" in obj):
            fields = {k: v for k, v in obj.items() if k not in _RESERVED}
            if "@timestamp" in obj:
                fields["timestamp"] = obj["@timestamp"]
            if "@module" in obj:
                fields["module"] = obj["@module"]
            return (
                level_number(str(obj.get("@level", "debug"))),
                str(obj.get("@message", "")),
                fields,
            )
    match = _PREFIX.match(text)
    if match:
        return level_number(match.group(1)), match.group(2), {}
    return logging.DEBUG, text, {}


def forward_log_line(logger: logging.Logger, line: str, **extra: Any) -> None:
    """Parse ``line`` and log it on ``logger``; fields land in ``record.plugin_fields``."""
    level, message, fields = parse_log_line(line)
    if logger.isEnabledFor(level):
        if fields:
            shown = " ".join(f"{k}={v}" for k, v in fields.items() if k != "timestamp")
            message = f"{message} {shown}".rstrip() if shown else message
        logger.log(level, "%s", message, extra={"plugin_fields": fields, **extra})


class HclogFormatter(logging.Formatter):
    """Format records as one hclog JSON object per line.

    Keys: ``@level`` (trace/debug/info/warn/error), ``@message``, ``@timestamp``
    (RFC 3339 with microseconds), ``@module`` (the logger name) and any ``extra``
    fields given to the logging call.
    """

    _STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        elif record.levelno >= logging.DEBUG:
            level = "debug"
        else:
            level = "trace"
        obj: dict[str, Any] = {
            "@level": level,
            "@message": record.getMessage(),
            "@timestamp": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(
                timespec="microseconds"
            ),
            "@module": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in self._STD and not key.startswith("_"):
                obj[key] = value
        if record.exc_info:
            obj["error"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)
