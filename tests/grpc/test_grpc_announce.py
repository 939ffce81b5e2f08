"""The announce line, formatted and parsed as go-plugin does."""

from __future__ import annotations

import base64

import pytest

from plugwire.core.errors import VersionMismatchError
from plugwire.grpc.goplugin import Announce, AnnounceError, CoreVersionError, parse_announce
from plugwire.grpc.goplugin.announce import b64_der, der_from_b64
from plugwire.grpc.goplugin.errors import MultiplexNotSupportedError, UnsupportedProtocolError
from plugwire.grpc.mtls import generate_cert


def test_format_without_tls_ends_with_empty_cert_field() -> None:
    line = Announce(app_version=1, network="unix", address="/tmp/plugin1").format()
    assert line == "1|1|unix|/tmp/plugin1|grpc|"


def test_format_with_cert_and_multiplex() -> None:
    der = bytes(range(256)) + b"x"  # 257 bytes: standard base64 would need padding
    line = Announce(2, "tcp", "127.0.0.1:1234", server_cert=der, multiplex=True).format()
    fields = line.split("|")
    assert fields[:5] == ["1", "2", "tcp", "127.0.0.1:1234", "grpc"]
    assert "=" not in fields[5]
    assert fields[5] == base64.b64encode(der).decode().rstrip("=")
    assert fields[6] == "true"
    assert len(fields) == 7


def test_roundtrip() -> None:
    der = generate_cert().cert_der  # go-plugin parses the certificate
    ann = Announce(3, "unix", "/s", server_cert=der, multiplex=True)
    assert parse_announce(ann.format() + "\n", versions=[1, 3], want_multiplex=True) == ann


@pytest.mark.parametrize("n", range(0, 6))
def test_unpadded_base64_roundtrip(n: int) -> None:
    data = bytes(range(n + 10))
    assert der_from_b64(b64_der(data)) == data


@pytest.mark.parametrize(
    ("line", "error", "text"),
    [
        ("", AnnounceError, "Unrecognized remote plugin message"),
        ("hello world", AnnounceError, "Unrecognized remote plugin message"),
        ("x|1|unix|/s|grpc|", AnnounceError, "core protocol version"),
        ("2|1|unix|/s|grpc|", CoreVersionError, "incompatible core API version"),
        ("1|x|unix|/s|grpc|", AnnounceError, "protocol version"),
        ("1|9|unix|/s|grpc|", VersionMismatchError, "incompatible API version"),
        ("1|1|udp|/s|grpc|", AnnounceError, "unknown address type"),
        ("1|1|unix|/s|netrpc|", UnsupportedProtocolError, "unsupported plugin protocol"),
        ("1|1|unix|/s", UnsupportedProtocolError, "unsupported plugin protocol"),  # netrpc default
        # go-plugin reads a field 6 longer than 50 characters only
        ("1|1|unix|/s|grpc|" + "%" * 51, AnnounceError, "server cert"),
        # and field 7 only when it asked for multiplexing
        ("1|1|unix|/s|grpc||maybe", AnnounceError, "multiplexing"),
    ],
)
def test_parse_errors(line: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        parse_announce(line, versions=[1], peer="kv", want_multiplex=line.endswith("|maybe"))
    assert text in str(info.value)
    assert getattr(info.value, "peer", None) == "kv"


def test_version_mismatch_names_both_lists() -> None:
    with pytest.raises(VersionMismatchError) as info:
        parse_announce("1|4|unix|/s|grpc|", versions=[1, 2])
    assert info.value.offered == (4,)
    assert info.value.supported == (1, 2)


def test_multiplex_required_but_absent() -> None:
    with pytest.raises(MultiplexNotSupportedError):
        parse_announce("1|1|unix|/s|grpc|", versions=[1], want_multiplex=True)
    with pytest.raises(MultiplexNotSupportedError):
        parse_announce("1|1|unix|/s|grpc||false", versions=[1], want_multiplex=True)
    assert parse_announce("1|1|unix|/s|grpc||true", versions=[1], want_multiplex=True).multiplex
