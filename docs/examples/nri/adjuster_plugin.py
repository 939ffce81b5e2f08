#!/usr/bin/env python3
"""An NRI plugin in Python: adjusts every container it sees being created.

Run it against a runtime's socket (containerd, CRI-O, or ``runtime_host.py``)::

    python adjuster_plugin.py --socket /var/run/nri/nri.sock --idx 10

or install it as a pre-installed plugin (``/opt/nri/plugins/10-adjuster``); the
runtime then starts it with its socket on fd 3 and ``NRI_PLUGIN_*`` set.

What it does: on CreateContainer it adds ``ADJUSTED_BY=<name>``, an annotation, a
read-only bind mount of ``/etc/hostname`` and (if the config says so) a memory
limit; it collects split Synchronize requests and logs the pods and containers; it
asks the runtime for an unsolicited CPU-shares update of the first running container
once synchronised (``--update``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import anyio

from plugwire.ttrpc.nri import Adjustment, Container, PodSandbox, Stub, Update

log = logging.getLogger("adjuster")


class Adjuster:
    def __init__(self, name: str, update: bool) -> None:
        self.name = name
        self.memory_limit = 0
        self.want_update = update
        self.first_container = ""
        self.stub: Stub | None = None

    async def configure(self, config: str, runtime: str, version: str) -> int:
        log.info("configured by %s %s with %r", runtime, version, config)
        for line in config.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "memory_limit":
                self.memory_limit = int(value)
        return 0  # every implemented event

    async def synchronize(
        self, pods: list[PodSandbox], containers: list[Container]
    ) -> list[Update]:
        log.info("synchronized: %d pods, %d containers", len(pods), len(containers))
        if containers:
            self.first_container = containers[0].id
        return []

    async def create_container(self, pod: PodSandbox, container: Container) -> Adjustment:
        adjust = (
            Adjustment()
            .add_env("ADJUSTED_BY", self.name)
            .add_annotation("plugwire.example/adjusted", "true")
            .add_mount("/etc/host-hostname", "/etc/hostname", options=["rbind", "ro"])
        )
        if self.memory_limit:
            adjust.set_memory_limit(self.memory_limit)
        return adjust

    async def remove_container(self, pod: PodSandbox, container: Container) -> None:
        log.info("container %s/%s removed", pod.name, container.name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default=None, help="runtime socket (default: NRI's)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--idx", default=None)
    parser.add_argument("--update", action="store_true", help="send an unsolicited update")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    plugin = Adjuster(args.name or os.environ.get("NRI_PLUGIN_NAME", "adjuster"), args.update)
    name = args.name or ("adjuster" if not os.environ.get("NRI_PLUGIN_NAME") else None)
    idx = args.idx or (None if os.environ.get("NRI_PLUGIN_IDX") else "10")
    stub = Stub(plugin, name=name, idx=idx, socket_path=args.socket)
    plugin.stub = stub
    async with anyio.create_task_group() as tg:
        tg.start_soon(stub.serve_async)
        await stub.synchronized.wait()
        if args.update and plugin.first_container:
            failed = await stub.update_containers(
                [Update(plugin.first_container).set_cpu_shares(512)]
            )
            log.info("unsolicited update sent, %d failed", len(failed))


if __name__ == "__main__":
    anyio.run(main)
