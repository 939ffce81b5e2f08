"""Stub construction rules and plugin naming (no runtime needed)."""

from __future__ import annotations

import pytest

from plugwire.core.errors import ConfigError
from plugwire.ttrpc.nri import Event, Stub, check_plugin_index, event_mask, parse_plugin_name
from plugwire.ttrpc.nri.api import VALID_EVENTS, check_plugin_name, events_in, pb


class OnlyCreate:
    async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        return None


class PodEvents:
    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        return None

    async def remove_container(self, pod: pb.PodSandbox, c: pb.Container) -> None:
        return None

    async def configure(self, config: str, runtime: str, version: str) -> int:
        return 0


def test_no_handlers_is_an_error() -> None:
    class Nothing:
        async def configure(self, config: str, runtime: str, version: str) -> int:
            return 0

    with pytest.raises(ConfigError, match="does not implement any NRI request handlers"):
        Stub(Nothing(), name="x", idx="10")


def test_event_mask_from_handlers() -> None:
    stub = Stub(PodEvents(), name="x", idx="10")
    assert stub.implemented == event_mask(Event.RUN_POD_SANDBOX, Event.REMOVE_CONTAINER)
    assert events_in(stub.implemented) == [Event.RUN_POD_SANDBOX, Event.REMOVE_CONTAINER]
    assert Event.CREATE_CONTAINER.bit == 1 << 3
    assert VALID_EVENTS == (1 << 14) - 1


def test_identity_from_options_env_and_argv0() -> None:
    assert Stub(OnlyCreate(), name="n", idx="05", environ={}).full_name == "05-n"
    env = {"NRI_PLUGIN_NAME": "envname", "NRI_PLUGIN_IDX": "42"}
    assert Stub(OnlyCreate(), environ=env, argv0="/x/99-ignored").full_name == "42-envname"
    assert Stub(OnlyCreate(), environ={}, argv0="/opt/nri/plugins/30-logger").full_name == (
        "30-logger"
    )
    # an index without a name takes argv[0] as the name, as upstream does
    assert Stub(OnlyCreate(), idx="07", environ={}, argv0="/bin/tool").full_name == "07-tool"
    with pytest.raises(ConfigError, match="idx-pluginname expected"):
        Stub(OnlyCreate(), environ={}, argv0="/usr/bin/python3")
    with pytest.raises(ConfigError, match="must be 2 digits"):
        Stub(OnlyCreate(), name="n", idx="123", environ={})


def test_plugin_name_rules() -> None:
    assert parse_plugin_name("10-my-plugin") == ("10", "my-plugin")
    for bad in ("1-x", "ab-x", "x", "100-x"):
        with pytest.raises(ConfigError):
            parse_plugin_name(bad)
    check_plugin_index("00")
    with pytest.raises(ConfigError, match=r"not \[0-9\]\[0-9\]"):
        check_plugin_index("1a")
    check_plugin_name("ok_name.v1+x")
    with pytest.raises(ConfigError, match="invalid character"):
        check_plugin_name("bad name")


@pytest.mark.anyio
async def test_bad_fd_in_environment() -> None:
    stub = Stub(OnlyCreate(), name="n", idx="10", environ={"NRI_PLUGIN_SOCKET": "three"})
    with pytest.raises(ConfigError, match="invalid socket in environment"):
        await stub.serve_async()


@pytest.mark.anyio
async def test_unreachable_runtime(tmp_path: object) -> None:
    from plugwire.core.errors import ConnectionClosedError

    stub = Stub(OnlyCreate(), name="n", idx="10", socket_path="/nonexistent/nri.sock", environ={})
    with pytest.raises(ConnectionClosedError, match="failed to connect to NRI service"):
        await stub.serve_async()
