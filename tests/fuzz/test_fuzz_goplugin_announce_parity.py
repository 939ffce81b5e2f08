"""go-plugin announce parity: plugwire's ``parse_announce`` accepts and refuses the
lines go-plugin v1.8.0's ``Client.Start`` does (client.go: TrimSpace, Split "|",
strconv.Atoi for both versions, ResolveTCPAddr, the certificate read only when field
6 is longer than 50 characters, field 7 read with strconv.ParseBool only when the
host asked for gRPC multiplexing). One test per odd class of line, and a property:
a line Go's rules refuse never parses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran

from plugwire.core.errors import PlugwireError
from plugwire.grpc.goplugin.announce import GO_MAX_LINE, b64_der, go_atoi, parse_announce
from plugwire.grpc.mtls import generate_cert

pytestmark = pytest.mark.goplugin

CERT = b64_der(generate_cert().cert_der)

# (line, want_multiplex, accepted by go-plugin v1.8.0)
CASES = [
    ("1|1|unix|/tmp/x|grpc|", False, True),
    ("+1|+1|unix|/tmp/x|grpc|", False, True),  # Atoi takes a sign
    ("01|001|unix|/tmp/x|grpc|", False, True),
    ("1_0|1|unix|/tmp/x|grpc|", False, False),  # no underscores in base 10
    ("1|1_0|unix|/tmp/x|grpc|", False, False),
    ("1| 1|unix|/tmp/x|grpc|", False, False),  # no spaces inside a field
    ("1|1 |unix|/tmp/x|grpc|", False, False),
    ("1|\u0661|unix|/tmp/x|grpc|", False, False),  # ASCII digits only
    ("1|99999999999999999999|unix|/tmp/x|grpc|", False, False),  # out of int64
    ("  1|1|unix|/tmp/x|grpc|\r\n", False, True),  # TrimSpace
    ("\u30001|1|unix|/tmp/x|grpc|\u2029", False, True),  # unicode.IsSpace
    ("\x1f1|1|unix|/tmp/x|grpc|", False, False),  # U+001F: Python strips, Go does not
    ("1|1|unix|/tmp/x", False, False),  # 4 fields: net/rpc, not allowed
    ("1|1|unix|/tmp/x|grpc", False, True),  # no certificate field at all
    ("1|1|unix|/tmp/x|grpc|!!!", False, True),  # <= 50 chars: "extra" data, ignored
    ("1|1|unix|/tmp/x|grpc|" + "!" * 51, False, False),
    ("1|1|unix|/tmp/x|grpc|" + "A" * 64, False, False),  # base64, not a certificate
    ("1|1|unix|/tmp/x|grpc|" + CERT, False, True),
    ("1|1|unix|/tmp/x|grpc|" + CERT + "=" * (-len(CERT) % 4 or 4), False, False),  # padded
    ("1|1|unix|/tmp/x|grpc||junk", False, True),  # field 7 unread without mux
    ("1|1|unix|/tmp/x|grpc||junk", True, False),
    ("1|1|unix|/tmp/x|grpc||True", True, True),  # ParseBool spellings
    ("1|1|unix|/tmp/x|grpc||T", True, True),
    ("1|1|unix|/tmp/x|grpc||tRuE", True, False),
    ("1|1|unix|/tmp/x|grpc|| true", True, False),
    ("1|1|unix|/tmp/x|grpc||false", True, False),
    ("1|1|unix|/tmp/x|grpc|", True, False),
    ("1|1|unix|/tmp/x|grpc||true|extra|fields", True, True),
    ("1|1|tcp|127.0.0.1:1234|grpc|", False, True),
    ("1|1|tcp|127.0.0.1|grpc|", False, False),  # missing port
    ("1|1|tcp|[::1]:0|grpc|", False, True),
    ("1|1|tcp|::1:80|grpc|", False, False),  # too many colons
    ("1|1|tcp|host:99999|grpc|", False, False),  # invalid port
    ("1|1|tcp|127.0.0.1:http|grpc|", False, True),  # a service name
    ("1|1|tcp|127.0.0.1:nosuchservice|grpc|", False, False),
    ("1|1|udp|127.0.0.1:1|grpc|", False, False),
    ("1|1|unix|/tmp/x|netrpc|", False, False),
    ("1|2|unix|/tmp/x|grpc|", False, False),  # app version not offered
    ("2|1|unix|/tmp/x|grpc|", False, False),  # core version
    ("1|1|unix|/tmp/x|grpc|" + "x" * GO_MAX_LINE, False, False),  # bufio.Scanner limit
]


@pytest.mark.parametrize(("line", "mux", "accepted"), CASES, ids=[repr(c[0])[:60] for c in CASES])
def test_announce_parity_with_go_plugin(line: str, mux: bool, accepted: bool) -> None:
    try:
        parse_announce(line, versions=(1,), want_multiplex=mux, peer="p")
    except PlugwireError as exc:
        assert not accepted, f"go-plugin accepts this line, plugwire refused: {exc}"
        assert exc.peer == "p"
        return
    assert accepted, "go-plugin refuses this line, plugwire accepted it"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("+1", 1), ("-0", 0), ("007", 7), ("9223372036854775807", 2**63 - 1)]
    + [
        (t, None)
        for t in ["", "+", "1_0", " 1", "1 ", "\u0661", "0x1", "9223372036854775808", "1e3"]
    ],
)
def test_go_atoi(text: str, value: int | None) -> None:
    assert go_atoi(text) == value


def _go_int_ok(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and all(c in "0123456789" for c in body) and abs(int(text)) < 2**63


@fuzz_settings(2)
@given(
    st.text(alphabet="0123456789+-_ \u0663\t", min_size=0, max_size=24),
    st.text(alphabet="0123456789+-_ \u0663", min_size=0, max_size=24),
)
def test_version_fields_follow_atoi(core: str, app: str) -> None:
    ran("goplugin announce versions (parity)")
    line = f"{core}|{app}|unix|/tmp/x|grpc|"
    trimmed_core = core.lstrip("\t ")
    go_accepts = (
        _go_int_ok(trimmed_core)
        and int(trimmed_core) == 1
        and _go_int_ok(app)
        and int(app) in (1, 2)
    )
    try:
        parse_announce(line, versions=(1, 2))
    except PlugwireError:
        assert not go_accepts, line
        return
    assert go_accepts, line
