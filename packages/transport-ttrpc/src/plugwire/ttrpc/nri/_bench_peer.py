"""The NRI plugin of ``plugwire bench nri`` (``python -m`` it with a socket; not public)."""

from __future__ import annotations

import sys

from plugwire.ttrpc.nri import Adjustment, Stub
from plugwire.ttrpc.nri.api import pb


class Bench:
    async def create_container(self, pod: pb.PodSandbox, c: pb.Container) -> Adjustment:
        return Adjustment().add_env("BENCH", "1")


if __name__ == "__main__":
    Stub(Bench(), name="bench", idx="10", socket_path=sys.argv[1]).serve()
