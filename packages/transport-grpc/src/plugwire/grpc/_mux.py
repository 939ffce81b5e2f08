"""Broker multiplexing over yamux (``PLUGIN_MULTIPLEX_GRPC``): glue to the yamux module.

Until the yamux session is available this declines multiplexing: the plugin then
answers ``false`` in the announce line's 7th field and a go-plugin host reports
that the plugin does not support the feature.
"""

from __future__ import annotations

from typing import Any

from .mtls import TLSConfig

__all__ = ["client_muxer", "server_muxer"]


def server_muxer(tls: TLSConfig | None) -> Any:
    """The plugin-side muxer, or ``None`` when multiplexing is unavailable."""
    return None


def client_muxer(tls: TLSConfig | None) -> Any:
    """The host-side muxer, or ``None`` when multiplexing is unavailable."""
    return None
