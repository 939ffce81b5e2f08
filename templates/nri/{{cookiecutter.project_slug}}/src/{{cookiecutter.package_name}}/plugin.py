"""The {{ cookiecutter.plugin_name }} NRI plugin.

On CreateContainer it

- annotates the container with ``{{ cookiecutter.annotation_prefix }}/adjusted-by``;
- injects the environment variables listed in its configuration (``NAME=value``
  lines; blank lines and ``#`` comments are ignored);
- sets the container's memory limit from the pod annotation
  ``{{ cookiecutter.annotation_prefix }}/memory-limit`` (bytes), if present.

Installed in a runtime's plugin directory as
``{{ cookiecutter.plugin_index }}-{{ cookiecutter.plugin_name }}`` (a pre-installed plugin),
it is started by the runtime, talks over fd 3 and gets its identity from
``NRI_PLUGIN_*``; started by hand, it dials ``--socket`` (default: NRI's socket).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from plugwire.ttrpc.nri import Adjustment, Container, ContainerUpdate, PodSandbox, Stub

PLUGIN_NAME = "{{ cookiecutter.plugin_name }}"
DESCRIPTION = "{{ cookiecutter.description }}"
PLUGIN_INDEX = "{{ cookiecutter.plugin_index }}"
ANNOTATION_PREFIX = "{{ cookiecutter.annotation_prefix }}"
ADJUSTED_BY = f"{ANNOTATION_PREFIX}/adjusted-by"
MEMORY_LIMIT = f"{ANNOTATION_PREFIX}/memory-limit"

log = logging.getLogger(PLUGIN_NAME)


def parse_config(config: str) -> dict[str, str]:
    """The ``NAME=value`` lines of the plugin's configuration; ValueError when malformed."""
    env: dict[str, str] = {}
    for number, raw in enumerate(config.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"config line {number}: expected NAME=value, got {line!r}")
        env[key.strip()] = value.strip()
    return env


class Plugin:
    """The NRI handlers; the stub subscribes to exactly the events implemented here."""

    def __init__(self) -> None:
        self.name = PLUGIN_NAME
        self.env: dict[str, str] = {}

    async def configure(self, config: str, runtime: str, version: str) -> int:
        self.env = parse_config(config)
        log.info("configured by %s %s: %d env var(s)", runtime, version, len(self.env))
        return 0  # 0: every event this class handles

    async def synchronize(
        self, pods: list[PodSandbox], containers: list[Container]
    ) -> list[ContainerUpdate]:
        log.info("synchronized: %d pod(s), %d container(s)", len(pods), len(containers))
        return []

    async def create_container(self, pod: PodSandbox, container: Container) -> Adjustment:
        adjust = Adjustment().add_annotation(ADJUSTED_BY, self.name)
        for key, value in self.env.items():
            adjust.add_env(key, value)
        limit = pod.annotations.get(MEMORY_LIMIT)
        if limit is not None:
            if not limit.isdigit():
                # Raising fails this CreateContainer with the message.
                raise ValueError(f"pod {pod.name}: {MEMORY_LIMIT}={limit!r} is not a byte count")
            adjust.set_memory_limit(int(limit))
        log.info("adjusted %s/%s", pod.name, container.name)
        return adjust

    async def remove_container(self, pod: PodSandbox, container: Container) -> None:
        log.info("container %s/%s removed", pod.name, container.name)


def main() -> None:
    parser = argparse.ArgumentParser(prog=PLUGIN_NAME, description=DESCRIPTION)
    parser.add_argument("--socket", help="the runtime's NRI socket (external plugin)")
    parser.add_argument("--name", help=f"plugin name (default: NRI_PLUGIN_NAME or {PLUGIN_NAME})")
    parser.add_argument("--idx", help=f"plugin index (default: NRI_PLUGIN_IDX or {PLUGIN_INDEX})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    preinstalled = "NRI_PLUGIN_NAME" in os.environ
    plugin = Plugin()
    stub = Stub(
        plugin,
        name=args.name or (None if preinstalled else PLUGIN_NAME),
        idx=args.idx or (None if preinstalled else PLUGIN_INDEX),
        socket_path=args.socket,
    )
    plugin.name = stub.full_name
    backend = os.environ.get("PLUGWIRE_ANYIO_BACKEND", "asyncio")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C when run by hand
        stub.serve(backend=backend)
