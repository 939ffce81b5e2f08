"""core: a plugin's output split into lines (bounded, truncation marker) and each
stderr line parsed as an hclog record or plain text. Nothing may raise: these run
in the host's pipe pumps, where an exception would take the plugin's handle down."""

from __future__ import annotations

import logging

from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran
from support.fuzzing_json import json_text, json_values

from plugwire.core._pipes import LineBuffer
from plugwire.core.logs import forward_log_line, parse_log_line

MAX = 256

hclog = st.fixed_dictionaries(
    {},
    optional={"@message": json_values, "@level": json_values, "@timestamp": json_values},
)


@fuzz_settings(3)
@given(st.one_of(json_text(hclog), json_text(), st.text(max_size=100)))
@example('{"a":' + "[" * 5000)  # RecursionError escaped the pump before the fix
@example('{"@level": {"x": 1}, "@message": [1]}')
@example("[ERROR] plain hclog text")
def test_any_stderr_line_parses_to_a_level_and_a_message(line: str) -> None:
    ran("core plugin log line")
    level, message, fields = parse_log_line(line)
    assert isinstance(level, int) and isinstance(message, str) and isinstance(fields, dict)
    forward_log_line(logging.getLogger("plugwire.fuzz"), line)


@fuzz_settings(3)
@given(
    st.lists(st.binary(max_size=3 * MAX).map(lambda b: b.replace(b"\n", b"\n\n")), max_size=8),
    st.lists(st.integers(1, 2 * MAX), min_size=1, max_size=5),
)
@example([b"x" * (10 * MAX)], [MAX])
def test_line_buffer_bounds_every_line_and_loses_no_newline(
    parts: list[bytes], cuts: list[int]
) -> None:
    ran("core output line buffer")
    data = b"\n".join(parts)
    buf = LineBuffer(MAX)
    lines: list[str] = []
    pos = i = 0
    while pos < len(data):
        lines += buf.feed(data[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
        assert len(buf._partial) <= MAX
    lines += buf.flush()
    expected = data.split(b"\n")
    if expected and not expected[-1]:
        expected.pop()
    assert len(lines) == len(expected)
    for got, raw in zip(lines, expected, strict=True):
        if len(raw) > MAX:
            assert got.endswith(f"[plugwire: line truncated, {len(raw) - MAX} bytes dropped]")
        else:
            assert got == raw.decode("utf-8", "replace").rstrip("\r")
