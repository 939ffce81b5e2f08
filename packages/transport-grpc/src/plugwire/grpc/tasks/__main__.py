"""``python -m plugwire.grpc.tasks MODULE:ATTR``: serve any task-plugin provider out of process.

``ATTR`` names a :class:`~plugwire.core.tasks.PluginProvider` instance, or a class or
zero-argument factory returning one. Launched by a host (``RemoteProvider`` or the
``external`` section of ``plugwire task run``'s worker file).
"""

from __future__ import annotations

import importlib
import sys

from plugwire.core.tasks.plugin import PluginProvider

from .server import serve


def main(argv: list[str]) -> int:
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m plugwire.grpc.tasks MODULE:ATTR", file=sys.stderr)
        return 2
    module, _, attr = argv[0].partition(":")
    obj = getattr(importlib.import_module(module), attr)
    provider = obj if isinstance(obj, PluginProvider) else obj()
    if not isinstance(provider, PluginProvider):
        print(f"{argv[0]} is not a PluginProvider", file=sys.stderr)
        return 2
    serve(provider)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
