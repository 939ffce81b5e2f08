"""A conformance server in a process of its own (``python anywire_peer.py WIRE ADDRESS``).

Serves :class:`anywire.conftest.ConformanceServicer` over the transport named WIRE at
ADDRESS on asyncio, prints ``READY <bound address>`` once it listens, and ``HANG`` when
a ``Hang`` call has reached the servicer (so a test knows a unary call is in flight
before it kills this process). Launched by the tests through
:class:`plugwire.core.process.PluginProcess` only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests directory

import anyio
from anywire.conftest import ConformanceServicer

from plugwire.core.transport import Address, load_transport


class ProcessServicer(ConformanceServicer):
    async def Hang(self, request: Any, context: Any) -> Any:
        print("HANG", flush=True)
        return await super().Hang(request, context)


async def main(wire: str, address: str) -> None:
    transport = load_transport(wire)
    async with transport.serve(Address.parse(address), [ProcessServicer()]) as bound:
        print(f"READY {bound}", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], backend="asyncio")
