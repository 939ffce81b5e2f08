"""The bundled core example plugin (``python -m plugwire.core._example_plugin``).

It speaks plugwire's minimal core handshake: the host sets the magic cookie and
``PLUGWIRE_PROTOCOL_VERSIONS``; the plugin checks the cookie (refusing politely with
exit status 1), negotiates, prints ``1|<version>|<name>`` on stdout, logs through
hclog JSON on stderr, echoes stdin lines upper-cased on stdout, and exits at stdin EOF.
"""

from __future__ import annotations

import logging
import os
import sys

from plugwire.core.errors import PlugwireError
from plugwire.core.handshake import Handshake, parse_versions
from plugwire.core.logs import HclogFormatter

HANDSHAKE = Handshake("PLUGWIRE_EXAMPLE_COOKIE", "d3m0", protocol_versions=(1, 2))


def main() -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HclogFormatter())
    log = logging.getLogger("example")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        HANDSHAKE.check_cookie(os.environ)
        version = HANDSHAKE.negotiate(
            parse_versions(os.environ.get("PLUGWIRE_PROTOCOL_VERSIONS", ""))
        )
    except PlugwireError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(f"1|{version}|upper", flush=True)
    log.info("plugin ready", extra={"version": version, "pid": os.getpid()})
    for line in sys.stdin:
        log.debug("request", extra={"bytes": len(line)})
        print(line.rstrip("\n").upper(), flush=True)
    log.warning("stdin closed: exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
