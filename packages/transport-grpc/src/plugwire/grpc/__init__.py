"""plugwire.grpc: gRPC transport with full hashicorp/go-plugin wire compatibility.

Plugin side — make this process a plugin any go-plugin host can launch::

    from plugwire.core.handshake import Handshake
    from plugwire.grpc import ServicePlugin, serve

    serve(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": ServicePlugin(register=lambda s: add_KVServicer_to_server(KV(), s))},
    )

Host side — launch any go-plugin gRPC plugin (Go or not)::

    from plugwire.grpc import Client, ClientConfig

    async with Client(ClientConfig(handshake=..., plugins={"kv_grpc": ServicePlugin(stub=KVStub)},
                                   cmd=["./kv-plugin"], auto_mtls=True)) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(PutRequest(key="a", value=b"1"))

Concepts, one module each (as in go-plugin): :mod:`.server` (``serve``),
:mod:`.client` (``Client``), :mod:`.broker` (``GrpcBroker``), :mod:`.mtls`
(AutoMTLS), :mod:`.stdio`, :mod:`.controller`, :mod:`.health`, :mod:`.announce`,
:mod:`.logs`, :mod:`.transport` (``GrpcTransport``), :mod:`.binding`
(``add_servicer``: serve a plain servicer object from its descriptor) and
:mod:`.yamux` (the yamux session behind ``PLUGIN_MULTIPLEX_GRPC``, with the bridges
that run grpc.aio over it: ``GoPluginMuxer``, ``YamuxServeBridge``,
``YamuxDialBridge``); names load on first use.
grpc.aio runs on asyncio only:
under trio every entry point raises
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import importlib
import os

# grpc's fork handlers crash forked children now and then while grpc.aio threads are
# busy ("Other threads are currently calling into gRPC, skipping fork() handlers",
# then SIGSEGV before exec). plugwire never uses grpc in a forked child -- plugins
# are exec'd -- so turn them off unless the user chose otherwise.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import binding, yamux
    from ._yamux_bridge import GoPluginMuxer, NoRouteError, YamuxDialBridge, YamuxServeBridge
    from .announce import CORE_PROTOCOL_VERSION, Announce, parse_announce
    from .binding import PortableContext, add_servicer, generic_handler
    from .broker import BrokerServer, GrpcBroker
    from .client import Client, ClientConfig, ReattachConfig, SecureConfig, cleanup_clients
    from .errors import (
        AnnounceError,
        ChecksumMismatchError,
        CoreVersionError,
        MultiplexNotSupportedError,
        UnsupportedProtocolError,
    )
    from .health import GRPC_SERVICE_NAME
    from .logs import configure_plugin_logging
    from .mtls import Certificate, TLSConfig, generate_cert
    from .plugin import GrpcPlugin, ServicePlugin
    from .server import ServeConfig, serve, serve_async
    from .transport import GrpcChannel, GrpcTransport
    from .yamux import YamuxConfig, YamuxStream

_EXPORTS = {
    "CORE_PROTOCOL_VERSION": ".announce",
    "Announce": ".announce",
    "parse_announce": ".announce",
    "PortableContext": ".binding",
    "add_servicer": ".binding",
    "generic_handler": ".binding",
    "BrokerServer": ".broker",
    "GrpcBroker": ".broker",
    "Client": ".client",
    "ClientConfig": ".client",
    "ReattachConfig": ".client",
    "SecureConfig": ".client",
    "cleanup_clients": ".client",
    "AnnounceError": ".errors",
    "ChecksumMismatchError": ".errors",
    "CoreVersionError": ".errors",
    "MultiplexNotSupportedError": ".errors",
    "UnsupportedProtocolError": ".errors",
    "GRPC_SERVICE_NAME": ".health",
    "configure_plugin_logging": ".logs",
    "Certificate": ".mtls",
    "TLSConfig": ".mtls",
    "generate_cert": ".mtls",
    "GrpcPlugin": ".plugin",
    "ServicePlugin": ".plugin",
    "ServeConfig": ".server",
    "serve": ".server",
    "serve_async": ".server",
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
_SUBMODULES = frozenset({"binding", "yamux"})

__all__ = [
    "CORE_PROTOCOL_VERSION",
    "GRPC_SERVICE_NAME",
    "Announce",
    "AnnounceError",
    "BrokerServer",
    "Certificate",
    "ChecksumMismatchError",
    "Client",
    "ClientConfig",
    "CoreVersionError",
    "GoPluginMuxer",
    "GrpcBroker",
    "GrpcChannel",
    "GrpcPlugin",
    "GrpcTransport",
    "MultiplexNotSupportedError",
    "NoRouteError",
    "PortableContext",
    "ReattachConfig",
    "SecureConfig",
    "ServeConfig",
    "ServicePlugin",
    "TLSConfig",
    "UnsupportedProtocolError",
    "YamuxConfig",
    "YamuxDialBridge",
    "YamuxServeBridge",
    "YamuxStream",
    "add_servicer",
    "binding",
    "cleanup_clients",
    "configure_plugin_logging",
    "generate_cert",
    "generic_handler",
    "parse_announce",
    "serve",
    "serve_async",
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
