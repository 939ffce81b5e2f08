"""The stdin handshake line: encoding, parsing, and garbage."""

from __future__ import annotations

import base64
import json

import pytest

from plugwire.core.errors import HandshakeError
from plugwire.grpc.cipd import PluginHandshake, new_ticket


def test_ticket_is_64_random_bytes_in_raw_std_base64() -> None:
    ticket = new_ticket()
    assert "=" not in ticket
    assert len(base64.b64decode(ticket + "==")) == 64
    assert new_ticket() != ticket


def test_encode_is_one_compact_json_line() -> None:
    line = PluginHandshake(1234, "t/+k").encode()
    assert line == b'{"port":1234,"ticket":"t/+k"}\n'
    assert PluginHandshake.parse(line) == PluginHandshake(1234, "t/+k")


def test_parse_accepts_protojson_forms() -> None:
    # protojson accepts int32 as a JSON string, and whitespace.
    assert PluginHandshake.parse(' { "port" : "99", "ticket" : "x" } \n').port == 99


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage\n",
        b"[1, 2]\n",
        b'{"port": 1}\n',
        b'{"ticket": "x"}\n',
        b'{"port": 0, "ticket": "x"}\n',
        b'{"port": 70000, "ticket": "x"}\n',
        b'{"port": "abc", "ticket": "x"}\n',
        b'{"port": 1, "ticket": "x", "extra": true}\n',
        b"\xff\xfe\n",
        json.dumps({"port": 1.5, "ticket": "x"}).encode(),
    ],
)
def test_garbage_is_a_handshake_error(line: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        PluginHandshake.parse(line)
    err = info.value
    assert err.step == "handshake"
    assert err.peer == "host"
    assert "port" in str(err.expected)
    assert err.seen


def test_repr_hides_the_ticket() -> None:
    assert "secret" not in repr(PluginHandshake(1, "secret"))
