"""The admit-all plugin of ``plugwire bench cipd`` (``python -m`` it; not a public API)."""

from __future__ import annotations

from plugwire.grpc.cipd import plugin


async def admit_all(admission: plugin.Admission, info: plugin.InstanceInfo) -> None:
    return None


if __name__ == "__main__":
    plugin.serve(admit_all, version="plugwire bench (admit-all)")
