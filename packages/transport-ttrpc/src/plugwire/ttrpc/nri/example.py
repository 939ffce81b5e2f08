"""The bundled example NRI plugin: ``python -m plugwire.ttrpc.nri.example``.

It adds ``ADJUSTED_BY=<name>``, an annotation and a read-only bind mount to every
container being created, and a memory limit if its configuration says
``memory_limit=<bytes>``. Run by a runtime as a pre-installed plugin it uses fd 3
and the ``NRI_PLUGIN_*`` environment; started by hand it dials ``--socket``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from plugwire.core.errors import ConfigError, PlugwireError

from ._generated import api_pb2 as pb
from .adjust import Adjustment
from .stub import Stub

__all__ = ["ExampleAdjuster", "main"]


class ExampleAdjuster:
    """Adjusts containers on CreateContainer (see the module docstring)."""

    def __init__(self) -> None:
        self.name = "adjuster"
        self.memory_limit = 0

    async def configure(self, config: str, runtime: str, version: str) -> int:
        for line in config.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "memory_limit":
                self.memory_limit = int(value)
        return 0

    async def create_container(self, pod: pb.PodSandbox, container: pb.Container) -> Adjustment:
        adjust = (
            Adjustment()
            .add_env("ADJUSTED_BY", self.name)
            .add_annotation("example.plugwire.io/adjusted", "true")
            .add_mount("/etc/host-hostname", "/etc/hostname", options=["rbind", "ro"])
        )
        if self.memory_limit:
            adjust.set_memory_limit(self.memory_limit)
        return adjust


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example plugin. Bad arguments (a plugin name/index that is not
    ``NN-name``) print the usage and a one-line error and exit 2; a runtime that
    cannot be reached, or a failed registration, prints one typed-error line and
    exits 1."""
    parser = argparse.ArgumentParser(
        prog="python -m plugwire.ttrpc.nri.example",
        description="The bundled example NRI plugin (adds env, an annotation and a mount).",
        epilog="Started by hand, give --name and --idx (or NRI_PLUGIN_NAME/NRI_PLUGIN_IDX).",
    )
    parser.add_argument("--socket", help="runtime socket (external plugin)")
    parser.add_argument("--name", help="plugin name (default: NRI_PLUGIN_NAME or argv[0])")
    parser.add_argument("--idx", help="plugin index, two digits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    plugin = ExampleAdjuster()
    try:
        stub = Stub(plugin, name=args.name, idx=args.idx, socket_path=args.socket)
    except ConfigError as exc:
        parser.error(str(exc))  # usage + one line, exit 2
    plugin.name = stub.full_name
    try:
        stub.serve()
    except PlugwireError as exc:
        print(f"{parser.prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
