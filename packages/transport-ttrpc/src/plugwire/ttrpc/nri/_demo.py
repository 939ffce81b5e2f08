"""``plugwire demo`` rows for NRI: host the bundled example plugin, both ways."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from plugwire.core.demo import DemoRow
from plugwire.core.process import PluginProcess

from ._generated import api_pb2 as pb
from .api import ConflictError
from .runtime import Runtime

FAMILY = "nri"


async def demo() -> Sequence[DemoRow]:
    """A plugwire NRI runtime launches the example plugin pre-installed (socketpair
    on fd 3), creates a container, lets a second copy connect externally and shows
    upstream's conflict detection when both set the same env var."""
    rows: list[DemoRow] = []
    pod = pb.PodSandbox(id="pod0", name="demo-pod", namespace="default")
    ctr = pb.Container(id="ctr0", pod_sandbox_id="pod0", name="demo", env=["A=1"])
    with tempfile.TemporaryDirectory(prefix="plugwire-nri-") as tmp:
        plugins = Path(tmp) / "plugins"
        conf = Path(tmp) / "conf.d"
        plugins.mkdir()
        conf.mkdir()
        launcher = plugins / "10-adjuster"
        launcher.write_text(
            f"#!{sys.executable}\nfrom plugwire.ttrpc.nri.example import main\nmain()\n"
        )
        launcher.chmod(0o755)
        (conf / "adjuster.conf").write_text("memory_limit=268435456\n")
        sock = Path(tmp) / "run" / "nri.sock"
        started = time.monotonic()
        async with Runtime(
            "plugwire-demo",
            "0.1",
            socket_path=sock,
            plugin_path=plugins,
            config_path=conf,
            registration_timeout=15,
        ) as rt:
            infos = rt.plugins
            ok = [p.name for p in infos] == ["10-adjuster"] and not infos[0].external
            rows.append(
                DemoRow(
                    FAMILY,
                    "pre-installed plugin on fd 3",
                    ok,
                    ", ".join(f"{p.name} (pid {p.pid}, events 0x{p.events:x})" for p in infos)
                    or "no plugin registered",
                    time.monotonic() - started,
                )
            )
            t0 = time.monotonic()
            rpl = await rt.create_container(pod, ctr)
            env = {e.key: e.value for e in rpl.adjust.env}
            limit = rpl.adjust.linux.resources.memory.limit.value
            rows.append(
                DemoRow(
                    FAMILY,
                    "CreateContainer adjustments",
                    env.get("ADJUSTED_BY") == "10-adjuster" and limit == 268435456,
                    f"env {env}, {len(rpl.adjust.mounts)} mount(s), memory limit {limit}",
                    time.monotonic() - t0,
                )
            )
            argv = [sys.executable, "-m", "plugwire.ttrpc.nri.example"]
            argv += ["--socket", str(sock), "--idx", "20", "--name", "external"]
            t0 = time.monotonic()
            async with PluginProcess(
                argv, env=dict(os.environ), name="nri-external", capture_stdout=False
            ):
                infos = await rt.wait_for_plugins(2, timeout=15)
                rows.append(
                    DemoRow(
                        FAMILY,
                        "external plugin, index order",
                        [p.name for p in infos] == ["10-adjuster", "20-external"],
                        " -> ".join(p.name for p in infos),
                        time.monotonic() - t0,
                    )
                )
                try:
                    await rt.create_container(pod, pb.Container(id="ctr1", name="second"))
                    rows.append(DemoRow(FAMILY, "conflict detection", False, "no conflict"))
                except ConflictError as exc:
                    rows.append(DemoRow(FAMILY, "conflict detection", True, str(exc)))
    return rows
