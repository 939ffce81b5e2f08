"""500 launch/call/close cycles of a go-plugin plugin (the Go kv harness plugin,
AutoMTLS on, so the TLS proxy's private sockets are made and removed each time):
the host's open fds and RSS come back to their baseline (within 5%), and no socket
file or temporary directory is left behind."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import tempfile
from pathlib import Path

import anyio
import pytest
from support.gobuild import build_go

from plugwire.core import Host, live_plugins
from plugwire.grpc.goplugin import ClientConfig, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = [pytest.mark.anyio, pytest.mark.goplugin, pytest.mark.interop]

CYCLES = int(os.environ.get("PLUGWIRE_FAULT_CYCLES", "500"))
WARMUP = 50


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fd_targets() -> dict[str, str]:
    """What each open fd points at (to name what a failed fd check kept open)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def rss() -> int:
    """Resident memory, after glibc returns freed heap pages to the system (RSS
    otherwise counts memory freed long ago but kept by the allocator)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_500_launch_close_cycles_return_to_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = build_go("goplugin", "./cmd/kvplugin", name="kvplugin")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the host's temp files
    data = tmp_path / "kv"
    data.mkdir()
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[str(plugin)],
        env={"KV_DIR": str(data), "TMPDIR": str(scratch)},  # the plugin's
        auto_mtls=True,
        start_timeout=30,
    )

    earlier = set(live_plugins())  # plugins other tests left registered (see docs)
    async with Host("cycles") as host:

        async def cycle(i: int) -> None:
            client = await host.launch(PluginClient(config))
            kv = client.dispense("kv_grpc")
            await kv.Put(kv_pb2.PutRequest(key="k", value=str(i).encode()))
            await host.close(client)

        for i in range(WARMUP):
            await cycle(i)
        gc.collect()
        open0 = fd_targets()
        fd0, rss0 = len(open0), rss()
        with anyio.fail_after(CYCLES * 2):
            for i in range(CYCLES):
                await cycle(i)
        # grpc's C core closes a channel's sockets and pollers asynchronously after
        # `close()` returns: give the last cycles' teardown up to 5 s to finish, and
        # snapshot what is open at the moment of the measurement.
        with anyio.move_on_after(5):
            while True:
                gc.collect()
                open1 = fd_targets()
                if len(open1) <= len(open0):
                    break
                await anyio.sleep(0.1)
        fd1, rss1 = len(open1), rss()
        assert not host.plugins and not set(live_plugins()) - earlier
    leftovers = sorted(p.name for p in scratch.iterdir())
    print(
        f"FIGURE cycles {CYCLES}: fds {fd0} -> {fd1}, RSS {rss0 / 2**20:.1f} -> "
        f"{rss1 / 2**20:.1f} MiB ({(rss1 - rss0) / rss0:+.1%}), leftovers {len(leftovers)}"
    )
    opened = {fd: t for fd, t in open1.items() if open0.get(fd) != t}
    assert fd1 <= fd0, (fd0, fd1, opened)
    assert abs(rss1 - rss0) <= 0.05 * rss0, (rss0, rss1)
    assert not leftovers, leftovers[:10]
