"""plugwire.core: the shared model under every plugwire transport.

Handshakes and version negotiation, promises, plugin processes, the host and its
controllers, the transport interface and the error hierarchy. Core imports no
transport; transports register in the ``plugwire.transports`` entry-point group.
"""

from __future__ import annotations

from .controller import CapabilityDeniedError, Controller
from .demo import DemoRow
from .errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    HandshakeError,
    MagicCookieError,
    MessageTooLargeError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    ProtocolError,
    RemoteError,
    TransportNotAvailableError,
    VersionMismatchError,
    status_name,
)
from .handle import BasePluginHandle, PluginHandle, ProcessPlugin
from .handshake import Handshake, negotiate, parse_versions
from .host import Host
from .logs import HclogFormatter, forward_log_line, parse_log_line
from .managed import cleanup_plugins, live_plugins
from .process import PluginProcess
from .promise import Promise, PromiseCache, PromiseStateError
from .shutdown import ShutdownPolicy, shutdown_sequence
from .status import StatusCode
from .transport import (
    Address,
    Channel,
    InProcessTransport,
    Transport,
    UnaryHandler,
    available_transports,
    load_transport,
)

__version__ = "0.1.0"

__all__ = [
    "Address",
    "BasePluginHandle",
    "CapabilityDeniedError",
    "Channel",
    "ClosedError",
    "ConfigError",
    "ConnectionClosedError",
    "Controller",
    "DemoRow",
    "Handshake",
    "HandshakeError",
    "HclogFormatter",
    "Host",
    "InProcessTransport",
    "MagicCookieError",
    "MessageTooLargeError",
    "PluginExitedError",
    "PluginHandle",
    "PluginProcess",
    "PluginStartError",
    "PluginTimeoutError",
    "PlugwireError",
    "ProcessPlugin",
    "Promise",
    "PromiseCache",
    "PromiseStateError",
    "ProtocolError",
    "RemoteError",
    "ShutdownPolicy",
    "StatusCode",
    "Transport",
    "TransportNotAvailableError",
    "UnaryHandler",
    "VersionMismatchError",
    "available_transports",
    "cleanup_plugins",
    "forward_log_line",
    "live_plugins",
    "load_transport",
    "negotiate",
    "parse_log_line",
    "parse_versions",
    "shutdown_sequence",
    "status_name",
]
