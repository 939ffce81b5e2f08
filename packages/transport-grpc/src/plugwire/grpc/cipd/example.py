"""A runnable CIPD admission plugin: ``python -m plugwire.grpc.cipd.example``.

The policy of LUCI's ``plugins/admission/example``, in Python: packages under
``experimental/`` are refused outright; any other package is admitted only if one of
its instance's ``allowed-sha256`` metadata entries equals the instance's hex digest.
It logs each decision to the host (``Host.Log``).
"""

from __future__ import annotations

import argparse
import logging

from . import plugin

log = logging.getLogger("cipd-example")

VERSION = "plugwire example 1.0"


async def decide(admission: plugin.Admission, info: plugin.InstanceInfo) -> None:
    """Admit ``admission`` or raise :func:`~plugwire.grpc.cipd.not_admitted`."""
    if admission.package.startswith("experimental/"):
        log.warning("refusing experimental package %s", admission.package)
        raise plugin.not_admitted("experimental packages are not allowed")
    visited = 0
    async for entry in info.visit_metadata(["allowed-sha256"]):
        visited += 1
        if entry.value.decode(errors="replace") == admission.instance.hex_digest:
            log.info("admitting %s (allowed-sha256 matches)", admission.package)
            return
    if visited == 0:
        raise plugin.not_admitted('doesn\'t have metadata entries with key "allowed-sha256"')
    raise plugin.not_admitted(
        f'evaluated {visited} metadata entries with key "allowed-sha256" and none is valid'
    )


def main(argv: list[str] | None = None) -> None:
    """Serve admissions (a CIPD client launches it; it takes no arguments). Unknown
    arguments: usage and a one-line error, exit 2; a host that does not answer the
    handshake on stdin: one typed-error line, exit 1 (:func:`plugin.serve`)."""
    parser = argparse.ArgumentParser(
        prog="python -m plugwire.grpc.cipd.example",
        description="The example CIPD admission plugin; a CIPD client launches it and "
        "speaks to it on stdin.",
    )
    parser.parse_args(argv)
    plugin.serve(decide, version=VERSION)


if __name__ == "__main__":
    main()
