"""A plugin that starts but never completes its handshake, for every family: the
host gives up after the configured timeout with a typed error naming the step, and
the hung process is gone."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest

from plugwire.core import Host
from plugwire.core.errors import PlugwireError

pytestmark = [pytest.mark.anyio]

TIMEOUT = 1.5
SLACK = 3.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only


def hanging_command(marker: str) -> list[str]:
    """A plugin that reads nothing, prints nothing, and sleeps (``marker`` finds it)."""
    return [sys.executable, "-c", f"import time; time.sleep(120)  # {marker}"]


def alive_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if stat != "Z":
                    pids.append(int(entry.name))
    return pids


async def gone(marker: str) -> bool:
    with anyio.move_on_after(3):
        while alive_with(marker):  # noqa: ASYNC110 - polling /proc
            await anyio.sleep(0.05)
    return not alive_with(marker)


@pytest.mark.goplugin
async def test_goplugin_announce_never_printed() -> None:
    from plugwire.grpc.goplugin import ClientConfig, PluginClient
    from plugwire.grpc.goplugin.examples import HANDSHAKE
    from plugwire.grpc.goplugin.examples.kv import KVPlugin

    marker = f"hang-{uuid.uuid4().hex}"
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=hanging_command(marker),
        start_timeout=TIMEOUT,
    )
    async with Host("fault") as host:
        started = time.monotonic()
        with pytest.raises(PlugwireError) as info:
            await host.launch(PluginClient(config))
        elapsed = time.monotonic() - started
        assert not host.plugins
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, elapsed
    assert isinstance(info.value, TimeoutError), repr(info.value)
    assert (info.value.step and "announce" in info.value.step.lower()) or "start" in str(
        info.value.step
    ), info.value
    assert await gone(marker)


@pytest.mark.cipd
async def test_cipd_plugin_never_connects_back() -> None:
    from plugwire.grpc.cipd import CipdHost, Pin
    from plugwire.grpc.cipd.metadata import StaticMetadataSource
    from plugwire.grpc.cipd.pins import HashAlgo, ObjectRef

    marker = f"hang-{uuid.uuid4().hex}"
    async with (
        Host("fault") as host,
        CipdHost(
            service_url="https://cipd.example.com", metadata=StaticMetadataSource({}), host=host
        ) as cipd_host,
    ):
        plugin = await cipd_host.launch(
            hanging_command(marker), name="hung", connect_timeout=TIMEOUT
        )
        digest = "5" * 64
        pin = Pin("infra/tools/x", ObjectRef(HashAlgo.SHA256, digest).instance_id)
        started = time.monotonic()
        with pytest.raises(PlugwireError) as info:
            await plugin.check(pin, timeout=30)  # the process starts on the first check
        elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, elapsed
    assert isinstance(info.value, TimeoutError), repr(info.value)
    assert await gone(marker)


@pytest.mark.drp
async def test_drp_provider_never_ready(tmp_path: Path) -> None:
    from plugwire.http.drp import ProviderPlugin

    marker = f"hang-{uuid.uuid4().hex}"
    script = tmp_path / "provider.py"
    # answers define like the demo provider, then hangs instead of printing READY!
    script.write_text(
        "import sys, time\n"
        "if sys.argv[1] == 'define':\n"
        "    from plugwire.http.drp._demo_provider import Counter, DEFINITION\n"
        "    from plugwire.http.drp import serve\n"
        "    serve(Counter, DEFINITION, version='0.1.0')\n"
        f"time.sleep(120)  # {marker}\n"
    )
    async with Host("fault") as host:
        started = time.monotonic()
        with pytest.raises(PlugwireError) as info:
            await host.launch(
                ProviderPlugin([sys.executable, str(script)], name="hung", ready_timeout=TIMEOUT)
            )
        elapsed = time.monotonic() - started
        assert not host.plugins
    assert elapsed < TIMEOUT + SLACK + 5, elapsed  # define runs first (a python start)
    assert isinstance(info.value, TimeoutError), repr(info.value)
    assert await gone(marker)


@pytest.mark.nri
async def test_nri_plugin_never_registers(tmp_path: Path) -> None:
    from plugwire.ttrpc.nri import Runtime

    marker = f"hang-{uuid.uuid4().hex}"
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    launcher = plugins / "10-hung"
    launcher.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)  # {marker}\n")
    launcher.chmod(0o755)
    async with Host("fault") as host:
        started = time.monotonic()
        try:
            async with Runtime(
                "fault",
                "0.1",
                socket_path=tmp_path / "nri.sock",
                plugin_path=plugins,
                config_path=conf,
                registration_timeout=TIMEOUT,
                host=host,
            ):
                elapsed = time.monotonic() - started
                outcome: BaseException | None = None
                # as upstream: the runtime starts without the plugin
                assert not [p for p in host.plugins if "hung" in p], host.plugins
        except PlugwireError as exc:
            elapsed = time.monotonic() - started
            outcome = exc
    assert elapsed < TIMEOUT + SLACK, elapsed
    assert outcome is None or isinstance(outcome, TimeoutError), repr(outcome)
    assert await gone(marker)
