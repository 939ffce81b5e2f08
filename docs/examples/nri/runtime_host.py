#!/usr/bin/env python3
"""An NRI runtime in Python hosting the example plugin, both ways.

    python docs/examples/nri/runtime_host.py

It creates a plugin directory with ``10-adjuster`` (``adjuster_plugin.py`` next to
this file) and its ``adjuster.conf``, starts a :class:`Runtime` that launches it on
a socketpair (fd 3) and listens on a socket for external plugins, starts a second
copy as an external plugin (index 20), and relays a pod and container lifecycle.
Each step prints one line; the second container shows upstream's conflict
detection (both copies set ``ADJUSTED_BY``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

from plugwire.ttrpc.nri import ConflictError, Container, PodSandbox, Runtime, SyncCallback

HERE = Path(__file__).resolve().parent


async def sync(callback: SyncCallback) -> None:
    """The runtime's current state, handed to each plugin once it connects."""
    await callback([PodSandbox(id="pod0", name="web")], [])


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nri-example-") as tmp:
        plugins, conf = Path(tmp) / "plugins", Path(tmp) / "conf.d"
        plugins.mkdir()
        conf.mkdir()
        plugin = plugins / "10-adjuster"
        plugin.write_text(f"#!{sys.executable}\n" + (HERE / "adjuster_plugin.py").read_text())
        plugin.chmod(0o755)
        (conf / "adjuster.conf").write_text("memory_limit=536870912\n")
        sock = Path(tmp) / "run" / "nri.sock"

        async with Runtime(
            "example-runtime",
            "1.0",
            socket_path=sock,
            plugin_path=plugins,
            config_path=conf,
            sync=sync,
        ) as rt:
            print("pre-installed:", [p.name for p in rt.plugins])
            pod = PodSandbox(id="pod0", name="web", namespace="default")
            ctr = Container(id="c1", pod_sandbox_id="pod0", name="nginx", env=["PATH=/bin"])
            await rt.run_pod_sandbox(pod)
            reply = await rt.create_container(pod, ctr)
            env = {e.key: e.value for e in reply.adjust.env}
            limit = reply.adjust.linux.resources.memory.limit.value
            print("adjusted env:", env, "memory limit:", limit)
            await rt.start_container(pod, ctr)

            argv = [sys.executable, str(HERE / "adjuster_plugin.py"), "--socket", str(sock)]
            argv += ["--idx", "20", "--name", "second"]
            async with await anyio.open_process(argv) as external:
                infos = await rt.wait_for_plugins(2, timeout=20)
                print("plugins in order:", [p.name for p in infos])
                try:
                    await rt.create_container(pod, Container(id="c2", name="sidecar"))
                except ConflictError as exc:
                    print("conflict:", exc.message)
                external.terminate()
            await rt.remove_container(pod, ctr)
            await rt.stop_pod_sandbox(pod)
            print("done")


if __name__ == "__main__":
    anyio.run(main)
