"""A provider target for test_terraform_launch: reports what :func:`launch` did.

Imported by ``launch("launch_probe:provider")`` in a provider process; its data source
``probe_gc`` reads back whether the collector was paused while this module was imported
and whether it runs again while the provider serves.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

from plugwire.grpc.terraform import Attribute, Context, DataSource, Provider, Schema, cty

PAUSED_AT_IMPORT = not gc.isenabled()


class GcProbe(DataSource):
    type_name = "probe_gc"
    schema = Schema(
        attributes={
            "paused_at_import": Attribute(cty.Bool, computed=True),
            "enabled_now": Attribute(cty.Bool, computed=True),
            "frozen": Attribute(cty.Number, computed=True),
        }
    )

    async def read(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {
            "paused_at_import": PAUSED_AT_IMPORT,
            "enabled_now": gc.isenabled(),
            "frozen": gc.get_freeze_count(),
        }


class ProcessProbe(DataSource):
    """What the serving process holds: whether it loaded cryptography, and the states
    of its child processes (``Z`` for one not reaped)."""

    type_name = "probe_process"
    schema = Schema(
        attributes={
            "cryptography_loaded": Attribute(cty.Bool, computed=True),
            "children": Attribute(cty.List(cty.String), computed=True),
        }
    )

    async def read(self, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"cryptography_loaded": "cryptography" in sys.modules, "children": _child_states()}


def _child_states() -> list[str]:
    states = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            for pid in f.read().split():
                with open(f"/proc/{pid}/stat") as stat:
                    states.append(stat.read().rsplit(")", 1)[1].split()[0])
    return states


def provider() -> Provider:
    return Provider("probe", data_sources=[GcProbe(), ProcessProbe()])
