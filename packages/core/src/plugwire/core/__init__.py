"""plugwire.core: the shared model under every plugwire transport.

Handshakes and version negotiation, promises, plugin processes, the host and its
controllers, the transport interface and the error hierarchy. Core imports no
transport; transports register in the ``plugwire.transports`` entry-point group.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from typing import Any

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

# Names load on first use (PEP 562): a plugin that needs only the errors and the
# handshake does not pay for processes, hosts and shutdown policies at start-up.
_EXPORTS = {
    "CapabilityDeniedError": "controller",
    "Controller": "controller",
    "DemoRow": "demo",
    "ClosedError": "errors",
    "ConfigError": "errors",
    "ConnectionClosedError": "errors",
    "HandshakeError": "errors",
    "MagicCookieError": "errors",
    "MessageTooLargeError": "errors",
    "PluginExitedError": "errors",
    "PluginStartError": "errors",
    "PluginTimeoutError": "errors",
    "PlugwireError": "errors",
    "ProtocolError": "errors",
    "RemoteError": "errors",
    "TransportNotAvailableError": "errors",
    "VersionMismatchError": "errors",
    "status_name": "errors",
    "BasePluginHandle": "handle",
    "PluginHandle": "handle",
    "ProcessPlugin": "handle",
    "Handshake": "handshake",
    "negotiate": "handshake",
    "parse_versions": "handshake",
    "Host": "host",
    "HclogFormatter": "logs",
    "forward_log_line": "logs",
    "parse_log_line": "logs",
    "cleanup_plugins": "managed",
    "live_plugins": "managed",
    "PluginProcess": "process",
    "Promise": "promise",
    "PromiseCache": "promise",
    "PromiseStateError": "promise",
    "ShutdownPolicy": "shutdown",
    "shutdown_sequence": "shutdown",
    "StatusCode": "status",
    "Address": "transport",
    "Channel": "transport",
    "InProcessTransport": "transport",
    "Transport": "transport",
    "UnaryHandler": "transport",
    "available_transports": "transport",
    "load_transport": "transport",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
