"""CIPD: the plugin's handshake JSON line (``{"port": N, "ticket": "..."}``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran
from support.fuzzing_json import DEEP, json_text, json_values

from plugwire.core.errors import HandshakeError
from plugwire.grpc.cipd.handshake import PluginHandshake

pytestmark = pytest.mark.cipd

handshakes = st.fixed_dictionaries(
    {},
    optional={
        "port": st.one_of(st.integers(-(2**40), 2**40), json_values),
        "ticket": st.one_of(st.text(max_size=30), json_values),
    },
)


@fuzz_settings(4)
@given(st.one_of(json_text(handshakes), json_text(), st.binary(max_size=80)))
@example(DEEP)
@example('{"port": 1e999, "ticket": "t"}')
@example('{"port": 1, "ticket": "t", "port": 2}')
@example('"\\ud800"')  # a lone surrogate (protobuf's JSON parser raised SystemError)
@example(b"\xff\xfe{}")
def test_handshake_line_parses_or_raises_handshake_error(line: str | bytes) -> None:
    ran("cipd handshake json")
    try:
        hs = PluginHandshake.parse(line, peer="fuzz")
    except HandshakeError as exc:
        assert exc.step == "handshake" and exc.peer == "fuzz"
        return
    assert 0 < hs.port < 65536 and hs.ticket
    assert PluginHandshake.parse(hs.encode()) == hs
    assert json.loads(hs.encode()) == {"port": hs.port, "ticket": hs.ticket}
