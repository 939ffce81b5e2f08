from __future__ import annotations

import json
import logging

import pytest

from plugwire.core import HclogFormatter, forward_log_line, parse_log_line


def test_hclog_json_line() -> None:
    line = json.dumps(
        {
            "@level": "warn",
            "@message": "disk low",
            "@timestamp": "2026-01-01T00:00:00Z",
            "@module": "kv",
            "free": 12,
        }
    )
    level, message, fields = parse_log_line(line + "\n")
    assert level == logging.WARNING
    assert message == "disk low"
    assert fields == {"free": 12, "timestamp": "2026-01-01T00:00:00Z", "module": "kv"}


@pytest.mark.parametrize(
    ("line", "level", "message"),
    [
        ("[DEBUG] starting", logging.DEBUG, "starting"),
        ("[INFO]  ready", logging.INFO, " ready"),
        ("[WARN] careful", logging.WARNING, "careful"),
        ("[ERROR] failed", logging.ERROR, "failed"),
        ("[TRACE] x", 5, "x"),
        ("plain text", logging.DEBUG, "plain text"),
        ("{not json", logging.DEBUG, "{not json"),
        ('{"a": 1}', logging.DEBUG, '{"a": 1}'),
    ],
)
def test_prefixes_and_plain_lines(line: str, level: int, message: str) -> None:
    assert parse_log_line(line)[:2] == (level, message)


def test_formatter_output_parses_back() -> None:
    record = logging.LogRecord("plugin.kv", logging.ERROR, __file__, 1, "put %s", ("k",), None)
    record.key = "k"
    out = HclogFormatter().format(record)
    obj = json.loads(out)
    assert obj["@level"] == "error" and obj["@message"] == "put k" and obj["key"] == "k"
    assert obj["@module"] == "plugin.kv" and obj["@timestamp"].endswith("+00:00")
    assert parse_log_line(out)[:2] == (logging.ERROR, "put k")


def test_forward_log_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("plugwire.plugin.test")
    with caplog.at_level(logging.DEBUG, logger="plugwire.plugin.test"):
        forward_log_line(logger, '{"@level":"info","@message":"hi","n":3}')
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == "hi n=3"
    assert record.plugin_fields == {"n": 3}  # type: ignore[attr-defined]
