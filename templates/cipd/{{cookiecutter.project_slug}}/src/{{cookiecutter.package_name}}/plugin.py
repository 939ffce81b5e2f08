"""The {{ cookiecutter.plugin_name }} CIPD deployment admission plugin.

Policy, for each package instance the CIPD client is about to deploy:

- a package outside ``{{ cookiecutter.allowed_prefix }}`` is not admitted;
- otherwise it is admitted only if the instance carries ``{{ cookiecutter.metadata_key }}``
  metadata (the first entry found is logged to the CIPD client's log).

The CIPD client (or any host built on luci's ``plugin/host``) starts this executable,
writes a handshake line to its stdin and closes stdin to stop it; plugwire does the
rest (:func:`plugwire.grpc.cipd.plugin.serve`).
"""

from __future__ import annotations

import logging
from typing import NoReturn

from plugwire.grpc.cipd import plugin

ALLOWED_PREFIX = "{{ cookiecutter.allowed_prefix }}"
METADATA_KEY = "{{ cookiecutter.metadata_key }}"
PLUGIN_VERSION = "{{ cookiecutter.plugin_name }} {{ cookiecutter.version }}"

log = logging.getLogger("{{ cookiecutter.plugin_name }}")


async def decide(admission: plugin.Admission, info: plugin.InstanceInfo) -> None:
    """Return to admit; ``raise plugin.not_admitted(reason)`` to refuse.

    Any other exception answers *Aborted* (an error, not a refusal) to the client.
    """
    if not admission.package.startswith(ALLOWED_PREFIX):
        raise plugin.not_admitted(f"only packages under {ALLOWED_PREFIX} may be deployed")
    async for entry in info.visit_metadata([METADATA_KEY], page_size=20):
        value = entry.value.decode(errors="replace")
        log.info("admitting %s: %s=%s", admission.package, METADATA_KEY, value)  # host's log
        return
    raise plugin.not_admitted(f"the instance has no {METADATA_KEY} metadata")


def main() -> NoReturn:
    plugin.serve(decide, version=PLUGIN_VERSION)
