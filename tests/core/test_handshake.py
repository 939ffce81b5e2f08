from __future__ import annotations

import pytest

from plugwire.core import (
    ConfigError,
    Handshake,
    MagicCookieError,
    VersionMismatchError,
    negotiate,
    parse_versions,
)


@pytest.mark.parametrize(
    ("offered", "supported", "expected"),
    [([1], [1], 1), ([1, 2, 3], [2, 3, 4], 3), ([5, 1], [1, 5, 9], 5), ([3, 2, 1], [2], 2)],
)
def test_negotiate_picks_highest_common(
    offered: list[int], supported: list[int], expected: int
) -> None:
    assert negotiate(offered, supported) == expected


def test_negotiate_without_common_version_names_both_lists() -> None:
    with pytest.raises(VersionMismatchError) as info:
        negotiate([4, 3], [1, 2], peer="kv")
    err = info.value
    assert err.offered == (3, 4) and err.supported == (1, 2)
    text = str(err)
    assert "[3, 4]" in text and "[1, 2]" in text and "kv" in text


def test_negotiate_empty_offer_is_a_mismatch() -> None:
    with pytest.raises(VersionMismatchError):
        negotiate([], [1])


def test_parse_versions() -> None:
    assert parse_versions("1, 2,,3") == (1, 2, 3)
    assert parse_versions("") == ()
    with pytest.raises(ConfigError) as info:
        parse_versions("1,two")
    assert "1,two" in str(info.value)


def test_cookie_check_is_friendly() -> None:
    hs = Handshake("BASIC_PLUGIN", "hello", protocol_versions=[1, 2])
    assert hs.protocol_versions == (1, 2)
    hs.check_cookie({"BASIC_PLUGIN": "hello"})
    with pytest.raises(MagicCookieError) as info:
        hs.check_cookie({})
    assert "not meant to be executed directly" in str(info.value)
    assert info.value.seen == "unset"
    with pytest.raises(MagicCookieError) as info:
        hs.check_cookie({"BASIC_PLUGIN": "nope"})
    assert "nope" in str(info.value)
    assert hs.cookie_env() == {"BASIC_PLUGIN": "hello"}
    assert hs.negotiate([2, 7]) == 2


def test_handshake_rejects_bad_key() -> None:
    with pytest.raises(ConfigError):
        Handshake("", "x")
    with pytest.raises(ConfigError):
        Handshake("A=B", "x")
