"""go-plugin handshake both ways: the host parsing the plugin's announce line
(plugwire.grpc.goplugin and the kube variant) and the plugin parsing the host's
environment (``PluginEnv.from_env``, ``Handshake.check_cookie``)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran

from plugwire.core.errors import ConfigError, PlugwireError
from plugwire.core.handshake import Handshake, parse_versions
from plugwire.grpc.goplugin import PluginEnv
from plugwire.grpc.goplugin.announce import parse_announce

pytestmark = pytest.mark.goplugin

FIELD = st.one_of(
    st.sampled_from(["1", "2", "0", "-1", "+1", " 1", "1_0", "٣", "99999999999999999999"]),
    st.sampled_from(["unix", "tcp", "udp", "", "grpc", "netrpc", "true", "false", "TRUE"]),
    st.sampled_from(["/tmp/p.sock", "127.0.0.1:1234", "[::1]:0", "host:99999", ":"]),
    st.sampled_from(["MIIB", "!!!", "=", "a" * 5000]),
    st.text(max_size=12),
)
announce_lines = st.one_of(
    st.lists(FIELD, min_size=0, max_size=9).map("|".join),
    st.text(max_size=200),
)


@fuzz_settings(4)
@given(announce_lines, st.booleans())
@example("1|1|unix|/tmp/x|grpc|", False)
@example("1|1|tcp|127.0.0.1:1|grpc|!!notbase64|true", True)
@example("1|" + "9" * 5000 + "|unix|/x|grpc|", False)  # int() digit limit
@example("1|1|tcp|127.0.0.1:1|grpc|" + "A" * 100_000, False)  # huge certificate
def test_announce_line_parses_or_raises_a_typed_error(line: str, mux: bool) -> None:
    ran("goplugin announce line")
    try:
        announce = parse_announce(line, versions=(1, 2), want_multiplex=mux, peer="fuzz")
    except PlugwireError as exc:
        assert exc.step == "announce" or exc.peer == "fuzz", exc
        return
    # what parsed formats back to a line that parses to the same announce
    assert parse_announce(announce.format(), versions=(1, 2), want_multiplex=mux) == announce


@fuzz_settings()
@given(announce_lines)
def test_kube_announce_filter_and_parser_agree(line: str) -> None:
    from plugwire.kube.goplugin import looks_like_announce
    from plugwire.kube.goplugin import parse_announce as kube_parse

    ran("kube announce line")
    shaped = looks_like_announce(line)
    try:
        kube_parse(line, versions=(1,), peer="pod")
    except PlugwireError:
        return
    assert shaped, f"parsed but not recognised as an announce line: {line!r}"


ENV_KEYS = [
    "PLUGIN_MIN_PORT",
    "PLUGIN_MAX_PORT",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_MULTIPLEX_GRPC",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_UNIX_SOCKET_DIR",
    "PLUGIN_UNIX_SOCKET_GROUP",
]
env_values = st.one_of(
    st.sampled_from(["", "0", "1", "65535", "65536", "-1", "1,2,x", "true", "2,,3", "٣"]),
    st.text(max_size=30),
    st.just("9" * 5000),
)


@fuzz_settings(3)
@given(st.dictionaries(st.sampled_from(ENV_KEYS), env_values))
@example({"PLUGIN_MIN_PORT": "9" * 5000})
@example({"PLUGIN_PROTOCOL_VERSIONS": "9" * 5000})
@example({"PLUGIN_MIN_PORT": "20", "PLUGIN_MAX_PORT": "10"})
def test_plugin_side_env_parses_or_raises_config_error(env: dict[str, str]) -> None:
    ran("goplugin PluginEnv.from_env")
    try:
        parsed = PluginEnv.from_env(env)
    except ConfigError as exc:
        assert exc.expected and exc.seen is not None
        return
    assert 0 <= parsed.listen.min_port <= parsed.listen.max_port <= 65535 or (
        parsed.listen.max_port == 0
    )


@fuzz_settings(2)
@given(
    st.dictionaries(st.sampled_from(["COOKIE", "OTHER", ""]), st.text(max_size=20)),
    st.text(max_size=40),
)
def test_cookie_and_version_list_parse_or_raise_typed_errors(
    env: dict[str, str], versions: str
) -> None:
    ran("core handshake cookie/versions")
    hs = Handshake(magic_cookie_key="COOKIE", magic_cookie_value="v")
    try:
        hs.check_cookie(env, peer="fuzz")
        assert env.get("COOKIE") == "v"
    except PlugwireError:
        assert env.get("COOKIE") != "v"
    try:
        parsed = parse_versions(versions)
    except PlugwireError:
        return
    assert all(isinstance(v, int) for v in parsed)
