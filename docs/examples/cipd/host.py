"""An example CIPD plugin host: check a few pins through an admission plugin.

    python docs/examples/cipd/host.py                    # the Python plugin.py here
    python docs/examples/cipd/host.py ./some-go-plugin   # any CIPD admission plugin

It serves the plugin protocol on 127.0.0.1, launches the plugin on the first check,
answers its metadata queries from an in-memory table and prints each decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from pathlib import Path

from plugwire.grpc.cipd import (
    AdmissionDeniedError,
    CipdHost,
    HashAlgo,
    MetadataEntry,
    ObjectRef,
    Pin,
    StaticMetadataSource,
)


def instance_id(content: bytes) -> str:
    return ObjectRef(HashAlgo.SHA256, hashlib.sha256(content).hexdigest()).instance_id


async def main(plugin_argv: list[str]) -> int:
    tool = Pin("infra/tools/deployer", instance_id(b"deployer v1"))
    other = Pin("infra/tools/unvetted", instance_id(b"unvetted v3"))
    experimental = Pin("experimental/new-tool", instance_id(b"new tool"))
    metadata = StaticMetadataSource(
        {
            tool: [
                MetadataEntry("reviewed-by", "someone@example.com"),
                MetadataEntry("allowed-sha256", tool.instance.hex_digest),
            ],
            other: [MetadataEntry("allowed-sha256", "0" * 64)],
        }
    )
    async with CipdHost(
        service_url="https://chrome-infra-packages.appspot.com", metadata=metadata
    ) as host:
        plugin = await host.launch(plugin_argv, name=Path(plugin_argv[-1]).name)
        pins = [tool, other, experimental]
        failures = 0
        for pin, promise in zip(pins, plugin.prefetch(pins), strict=True):
            try:
                await promise.wait()
                print(f"ADMITTED  {pin.package}")
            except AdmissionDeniedError as exc:
                print(f"DENIED    {pin.package}: {exc.message}")
            except Exception as exc:  # the plugin failed: say so, keep going
                failures += 1
                print(f"ERROR     {pin.package}: {exc}")
        print(f"plugin version: {plugin.plugin_version}")
    return 1 if failures else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] or [sys.executable, str(Path(__file__).with_name("plugin.py"))]
    sys.exit(asyncio.run(main(argv)))
