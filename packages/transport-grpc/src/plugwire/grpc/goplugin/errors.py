"""Typed errors of the go-plugin wire, all subclasses of :mod:`plugwire.core.errors`.

Each names the peer, the step, what was expected and what was seen, so one log line
says what went wrong.
"""

from __future__ import annotations

from plugwire.core.errors import HandshakeError, PluginStartError, ProtocolError

__all__ = [
    "AnnounceError",
    "ChecksumMismatchError",
    "CoreVersionError",
    "MultiplexNotSupportedError",
    "NegotiationError",
    "UnsupportedProtocolError",
    "WireMismatchError",
]


class AnnounceError(ProtocolError):
    """The plugin's first stdout line is not a go-plugin announce line.

    go-plugin calls this "Unrecognized remote plugin message": usually the plugin
    printed something on stdout before its handshake.
    """


class CoreVersionError(HandshakeError):
    """The announce line names a core protocol version other than 1."""


class UnsupportedProtocolError(HandshakeError):
    """The plugin speaks a protocol (``netrpc``, ...) the host does not allow."""


class NegotiationError(HandshakeError):
    """A wire negotiation value does not parse: the announce line's protocol field, or
    the ``PLUGWIRE_WIRES`` offer (see :mod:`.wires`)."""


class WireMismatchError(ProtocolError):
    """The plugin's endpoint does not speak the wire its announce line named (a ttrpc
    endpoint answering with gRPC/HTTP2 bytes, or the reverse)."""


class MultiplexNotSupportedError(HandshakeError):
    """The host asked for broker multiplexing and the plugin did not agree to it."""


class ChecksumMismatchError(PluginStartError):
    """SecureConfig: the plugin binary's checksum is not the expected one."""
