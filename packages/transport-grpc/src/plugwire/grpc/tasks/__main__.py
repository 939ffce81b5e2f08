"""``python -m plugwire.grpc.tasks MODULE:ATTR``: serve any task-plugin provider out of process.

``ATTR`` names a :class:`~plugwire.core.tasks.PluginProvider` instance, or a class or
zero-argument factory returning one. Launched by a host (``RemoteProvider`` or the
``external`` section of ``plugwire task run``'s worker file).
"""

from __future__ import annotations

import importlib
import sys

from plugwire.core.errors import PlugwireError
from plugwire.core.tasks.plugin import PluginProvider

from .server import serve

PROG = "python -m plugwire.grpc.tasks"


def _usage(problem: str) -> int:
    print(f"usage: {PROG} MODULE:ATTR", file=sys.stderr)
    print(f"{PROG}: error: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    """Bad arguments (or an ATTR that is no provider): usage and a one-line error,
    exit 2. A host that cannot be reached or fails: one typed-error line, exit 1."""
    if len(argv) != 1 or ":" not in argv[0]:
        return _usage("expected one MODULE:ATTR" if len(argv) != 1 else f"no ':' in {argv[0]!r}")
    module, _, attr = argv[0].partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        return _usage(f"cannot load {argv[0]}: {exc}")
    provider = obj if isinstance(obj, PluginProvider) else obj()
    if not isinstance(provider, PluginProvider):
        return _usage(f"{argv[0]} is not a PluginProvider")
    try:
        serve(provider)
    except PlugwireError as exc:
        print(f"{PROG}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
