"""plugwire.grpc: the gRPC transport (grpc.aio), and the families built on it.

The transport: :mod:`.transport` (``GrpcTransport``, the ``plugwire.transports``
entry), :mod:`.binding` (``add_servicer``: serve a plain servicer object from its
descriptor), :mod:`.mtls` (TLS material and AutoMTLS certificates), :mod:`.yamux` (the
yamux session behind go-plugin's ``PLUGIN_MULTIPLEX_GRPC``, with the bridges that run
grpc.aio over it: ``GoPluginMuxer``, ``YamuxServeBridge``, ``YamuxDialBridge``).

The families, one subpackage each: :mod:`plugwire.grpc.goplugin` (hashicorp/go-plugin:
``serve`` a plugin, ``PluginClient`` to host one), :mod:`plugwire.grpc.cipd` (LUCI CIPD
admission plugins) and :mod:`plugwire.grpc.tasks` (task plugins out of process).
Names load lazily, so ``import plugwire.grpc`` stays cheap.
"""

from __future__ import annotations

import importlib
import os

# grpc's fork handlers crash forked children now and then while grpc.aio threads are
# busy ("Other threads are currently calling into gRPC, skipping fork() handlers",
# then SIGSEGV before exec). plugwire's hosts exec their plugins, and a plugin's fork
# server (plugwire.core.forkserver) forks before grpc ever starts, so turn them off
# unless the user chose otherwise.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from typing import Any

    from . import binding, cipd, goplugin, tasks, yamux
    from ._yamux_bridge import GoPluginMuxer, NoRouteError, YamuxDialBridge, YamuxServeBridge
    from .binding import PortableContext, add_servicer, generic_handler
    from .mtls import Certificate, TLSConfig, generate_cert
    from .transport import GrpcChannel, GrpcTransport
    from .yamux import YamuxConfig, YamuxStream

_EXPORTS = {
    "PortableContext": ".binding",
    "add_servicer": ".binding",
    "generic_handler": ".binding",
    "Certificate": ".mtls",
    "TLSConfig": ".mtls",
    "generate_cert": ".mtls",
    "GrpcChannel": ".transport",
    "GrpcTransport": ".transport",
    "YamuxConfig": ".yamux",
    "YamuxStream": ".yamux",
    "GoPluginMuxer": "._yamux_bridge",
    "NoRouteError": "._yamux_bridge",
    "YamuxDialBridge": "._yamux_bridge",
    "YamuxServeBridge": "._yamux_bridge",
}
#: Subpackages served by ``__getattr__`` too (``plugwire.grpc.yamux`` without an import).
_SUBMODULES = frozenset({"binding", "cipd", "goplugin", "tasks", "yamux"})

__all__ = [
    "Certificate",
    "GoPluginMuxer",
    "GrpcChannel",
    "GrpcTransport",
    "NoRouteError",
    "PortableContext",
    "TLSConfig",
    "YamuxConfig",
    "YamuxDialBridge",
    "YamuxServeBridge",
    "YamuxStream",
    "add_servicer",
    "binding",
    "cipd",
    "generate_cert",
    "generic_handler",
    "goplugin",
    "tasks",
    "yamux",
]


def __getattr__(name: str) -> Any:
    """Import the module defining ``name`` on first access (keeps start-up light)."""
    value: Any
    if name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
