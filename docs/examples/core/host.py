"""A host launching the bundled core example plugin, talking to it, and stopping it.

Run: ``uv run python docs/examples/core/host.py`` (add ``trio`` to use trio).
"""

from __future__ import annotations

import logging
import sys

import anyio

from plugwire.core import Handshake, Host, ProcessPlugin

HANDSHAKE = Handshake("PLUGWIRE_EXAMPLE_COOKIE", "d3m0", protocol_versions=(1, 2))
PLUGIN = [sys.executable, "-m", "plugwire.core._example_plugin"]


async def main() -> None:
    env = {
        **HANDSHAKE.cookie_env(),
        "PLUGWIRE_PROTOCOL_VERSIONS": ",".join(map(str, HANDSHAKE.protocol_versions)),
    }
    async with Host("example-host") as host:
        upper = await host.launch(
            ProcessPlugin("upper", PLUGIN, env=env, stdin=True, polite_signal=None)
        )
        proc = upper.process
        print("handshake:", await proc.readline_stdout(timeout=10))
        for word in ("hello", "plugwire"):
            await proc.write_stdin(word.encode() + b"\n")
            print(word, "->", await proc.readline_stdout(timeout=10))
        await host.close(upper)  # closes stdin: the plugin's graceful step
        print("exit status:", proc.returncode)


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
