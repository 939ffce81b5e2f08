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

from .announce import CORE_PROTOCOL_VERSION, Announce, parse_announce
from .broker import BrokerServer, GrpcBroker
from .client import PluginClient, cleanup_clients
from .config import (
    BROKER,
    ClientConfig,
    EnvValueError,
    ListenConfig,
    PluginEnv,
    ReattachConfig,
    SecureConfig,
)
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
