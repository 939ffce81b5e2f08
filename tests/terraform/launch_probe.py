"""A provider target for test_terraform_launch: reports what :func:`launch` did.

Imported by ``launch("launch_probe:provider")`` in a provider process; its data source
``probe_gc`` reads back whether the collector was paused while this module was imported
and whether it runs again while the provider serves.
"""

from __future__ import annotations

import gc
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


def provider() -> Provider:
    return Provider("probe", data_sources=[GcProbe()])
