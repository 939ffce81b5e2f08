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
from .handshake import Handshake, negotiate, parse_versions
from .host import AsyncClosable, Host, Plugin
from .logs import HclogFormatter, forward_log_line, parse_log_line
from .process import PluginProcess
from .promise import Promise, PromiseCache, PromiseStateError
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
    "AsyncClosable",
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
    "Plugin",
    "PluginExitedError",
    "PluginProcess",
    "PluginStartError",
    "PluginTimeoutError",
    "PlugwireError",
    "Promise",
    "PromiseCache",
    "PromiseStateError",
    "ProtocolError",
    "RemoteError",
    "StatusCode",
    "Transport",
    "TransportNotAvailableError",
    "UnaryHandler",
    "VersionMismatchError",
    "available_transports",
    "forward_log_line",
    "load_transport",
    "negotiate",
    "parse_log_line",
    "parse_versions",
    "status_name",
]
