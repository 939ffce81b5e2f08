"""The plugin, launched for real by plugwire's NRI runtime (what containerd embeds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from plugwire.core.process import PluginProcess
from plugwire.ttrpc.nri import Container, NriError, PodSandbox, Runtime

from {{ cookiecutter.package_name }}.plugin import (
    ADJUSTED_BY,
    MEMORY_LIMIT,
    PLUGIN_INDEX,
    PLUGIN_NAME,
    parse_config,
)

pytestmark = pytest.mark.anyio

FULL_NAME = f"{PLUGIN_INDEX}-{PLUGIN_NAME}"


def env_of(reply: object) -> dict[str, str]:
    return {e.key: e.value for e in reply.adjust.env}  # type: ignore[attr-defined]


def test_parse_config() -> None:
    assert parse_config("# comment\n\nA=1\n B = two words \n") == {"A": "1", "B": "two words"}
    with pytest.raises(ValueError, match="line 1"):
        parse_config("not a pair")


async def test_preinstalled(plugin_executable: Callable[[Path], Path], sockdir: Path) -> None:
    """The runtime starts the plugin from its plugin directory on fd 3, with its config."""
    plugins, conf = sockdir / "plugins", sockdir / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    plugin_executable(plugins / FULL_NAME)
    (conf / f"{PLUGIN_NAME}.conf").write_text("GREETING=hello\nTEAM=platform\n")
    async with Runtime(
        "test-runtime",
        "1.0",
        socket_path=None,
        listen=False,
        plugin_path=plugins,
        config_path=conf,
    ) as rt:
        [info] = await rt.wait_for_plugins(1, timeout=20)
        assert (info.name, info.external) == (FULL_NAME, False)

        pod = PodSandbox(id="pod0", name="web", namespace="default")
        reply = await rt.create_container(pod, Container(id="c1", pod_sandbox_id="pod0"))
        assert env_of(reply) == {"GREETING": "hello", "TEAM": "platform"}
        assert reply.adjust.annotations[ADJUSTED_BY] == FULL_NAME
        assert not reply.adjust.linux.resources.memory.HasField("limit")

        sized = PodSandbox(id="pod1", name="db", annotations={MEMORY_LIMIT: str(256 << 20)})
        reply = await rt.create_container(sized, Container(id="c2", pod_sandbox_id="pod1"))
        assert reply.adjust.linux.resources.memory.limit.value == 256 << 20

        # A handler error fails that request only; the plugin stays connected.
        bad = PodSandbox(id="pod2", name="bad", annotations={MEMORY_LIMIT: "lots"})
        with pytest.raises(NriError, match="not a byte count"):
            await rt.create_container(bad, Container(id="c3", pod_sandbox_id="pod2"))
        assert [p.name for p in rt.plugins] == [FULL_NAME]


async def test_external(
    plugin_executable: Callable[[Path], Path], sockdir: Path, anyio_backend: str
) -> None:
    """Started by hand, the plugin dials the runtime's socket (here on both backends)."""
    socket = sockdir / "nri.sock"
    async with Runtime("test-runtime", "1.0", socket_path=socket) as rt:
        argv = [str(plugin_executable(sockdir / PLUGIN_NAME)), "--socket", str(socket)]
        argv += ["--idx", "42"]
        async with PluginProcess(
            argv,
            env={"PLUGWIRE_ANYIO_BACKEND": anyio_backend},
            inherit_env=True,
            name=PLUGIN_NAME,
        ):
            [info] = await rt.wait_for_plugins(1, timeout=20)
            assert (info.name, info.external) == (f"42-{PLUGIN_NAME}", True)
            pod = PodSandbox(id="pod0", name="web")
            reply = await rt.create_container(pod, Container(id="c1", pod_sandbox_id="pod0"))
            assert dict(reply.adjust.annotations) == {ADJUSTED_BY: f"42-{PLUGIN_NAME}"}
            assert env_of(reply) == {}
            await rt.remove_container(pod, Container(id="c1", pod_sandbox_id="pod0"))
