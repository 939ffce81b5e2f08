"""plugwire.grpc.goplugin: hashicorp/go-plugin's gRPC protocol, both sides.

Plugin side — make this process a plugin any go-plugin host can launch::

    from plugwire.core import Handshake
    from plugwire.grpc.goplugin import ServicePlugin, serve

    serve(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": ServicePlugin(register=lambda s: add_KVServicer_to_server(KV(), s))},
    )

Host side — launch any go-plugin gRPC plugin (Go or not); a :class:`PluginClient` is a
:class:`plugwire.core.PluginHandle`, so a :class:`plugwire.core.Host` can launch it::

    from plugwire.grpc.goplugin import ClientConfig, PluginClient

    config = ClientConfig(handshake=..., plugins={"kv_grpc": ServicePlugin(stub=KVStub)},
                          cmd=["./kv-plugin"], auto_mtls=True)
    async with PluginClient(config) as client:
        kv = client.dispense("kv_grpc")
        await kv.Put(PutRequest(key="a", value=b"1"))

Concepts, one module each (as in go-plugin): :mod:`.server` (``serve``),
:mod:`.client` (``PluginClient``), :mod:`.config` (``ClientConfig``, ``PluginEnv``:
go-plugin's environment parsed once), :mod:`.broker` (``GrpcBroker``), :mod:`.stdio`,
:mod:`.controller`, :mod:`.health`, :mod:`.announce`, :mod:`.logs`,
:mod:`.wires` (ttrpc negotiated between plugwire peers: ``client.protocol``,
``ClientConfig(wires=...)``); AutoMTLS
certificates come from :mod:`plugwire.grpc.mtls`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .announce import CORE_PROTOCOL_VERSION, Announce, parse_announce
    from .broker import BrokerServer, GrpcBroker
    from .client import PluginClient, cleanup_clients
    from .config import BROKER, ClientConfig, ListenConfig, ReattachConfig, SecureConfig
    from .env import EnvValueError, PluginEnv
    from .errors import (
        AnnounceError,
        ChecksumMismatchError,
        CoreVersionError,
        MultiplexNotSupportedError,
        NegotiationError,
        UnsupportedProtocolError,
        WireMismatchError,
    )
    from .health import GRPC_SERVICE_NAME
    from .logs import configure_plugin_logging
    from .plugin import GrpcPlugin, ServicePlugin
    from .server import ServeConfig, serve, serve_async

# Names load on first use (PEP 562): a plugin process loads the server side only,
# a host the client side only; start-up is what Terraform waits for per launch.
_EXPORTS = {
    "CORE_PROTOCOL_VERSION": "announce",
    "Announce": "announce",
    "parse_announce": "announce",
    "BrokerServer": "broker",
    "GrpcBroker": "broker",
    "PluginClient": "client",
    "cleanup_clients": "client",
    "BROKER": "config",
    "ClientConfig": "config",
    "EnvValueError": "env",
    "ListenConfig": "config",
    "PluginEnv": "env",
    "ReattachConfig": "config",
    "SecureConfig": "config",
    "AnnounceError": "errors",
    "ChecksumMismatchError": "errors",
    "CoreVersionError": "errors",
    "MultiplexNotSupportedError": "errors",
    "NegotiationError": "errors",
    "UnsupportedProtocolError": "errors",
    "WireMismatchError": "errors",
    "GRPC_SERVICE_NAME": "health",
    "configure_plugin_logging": "logs",
    "GrpcPlugin": "plugin",
    "ServicePlugin": "plugin",
    "ServeConfig": "server",
    "serve": "server",
    "serve_async": "server",
}

__all__ = [
    "BROKER",
    "CORE_PROTOCOL_VERSION",
    "GRPC_SERVICE_NAME",
    "Announce",
    "AnnounceError",
    "BrokerServer",
    "ChecksumMismatchError",
    "ClientConfig",
    "CoreVersionError",
    "EnvValueError",
    "GrpcBroker",
    "GrpcPlugin",
    "ListenConfig",
    "MultiplexNotSupportedError",
    "NegotiationError",
    "PluginClient",
    "PluginEnv",
    "ReattachConfig",
    "SecureConfig",
    "ServeConfig",
    "ServicePlugin",
    "UnsupportedProtocolError",
    "WireMismatchError",
    "cleanup_clients",
    "configure_plugin_logging",
    "parse_announce",
    "serve",
    "serve_async",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
