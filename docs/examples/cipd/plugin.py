"""An example CIPD deployment admission plugin written with plugwire.

Policy: packages under ``experimental/`` are refused outright. Any other package is
admitted only if its instance carries an ``allowed-sha256`` metadata entry whose
value is the instance's own hex digest (the policy of LUCI's Go example), and,
when ``ADMISSION_REQUIRE_REVIEW=1`` is set, also a ``reviewed-by`` entry.

Run it under a CIPD client (or ``host.py`` next to this file): the host starts it,
writes the handshake line to its stdin and closes stdin to stop it.
"""

from __future__ import annotations

import logging
import os

from plugwire.grpc.cipd import plugin

log = logging.getLogger("example-admission")


async def decide(admission: plugin.Admission, info: plugin.InstanceInfo) -> None:
    if admission.package.startswith("experimental/"):
        raise plugin.not_admitted("experimental packages are not allowed")

    hashes = 0
    matched = False
    reviewed = False
    async for entry in info.visit_metadata(["allowed-sha256", "reviewed-by"], page_size=10):
        if entry.key == "reviewed-by":
            reviewed = True
        else:
            hashes += 1
            matched = (
                matched or entry.value.decode(errors="replace") == admission.instance.hex_digest
            )

    if not matched:
        raise plugin.not_admitted(
            f'none of {hashes} "allowed-sha256" entries matches {admission.instance.hex_digest}'
        )
    if os.environ.get("ADMISSION_REQUIRE_REVIEW") == "1" and not reviewed:
        raise plugin.not_admitted("no reviewed-by metadata")
    log.info("admitted %s", admission.package)  # shows up in the host's log


if __name__ == "__main__":
    plugin.serve(decide, version="docs example 1.0")
