"""Session configuration (the knobs of hashicorp/yamux ``Config``)."""

from __future__ import annotations

from typing import Any

import attrs

from plugwire.core.errors import ConfigError

from ._frame import INITIAL_STREAM_WINDOW, MAX_UINT32

__all__ = ["YamuxConfig"]


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(
            f"yamux {attribute.name} must be positive",
            step="yamux config",
            expected="> 0",
            seen=value,
        )


def _not_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigError(
            f"yamux {attribute.name} must not be negative (0 disables it)",
            step="yamux config",
            expected=">= 0",
            seen=value,
        )


def _window(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not INITIAL_STREAM_WINDOW <= value <= MAX_UINT32:
        raise ConfigError(
            "yamux max_stream_window_size out of range",
            step="yamux config",
            expected=f"{INITIAL_STREAM_WINDOW} <= size <= {MAX_UINT32}",
            seen=value,
        )


@attrs.frozen
class YamuxConfig:
    """How a :class:`Session` behaves. The defaults are hashicorp/yamux's
    ``DefaultConfig()``, which is also what go-plugin uses.

    * ``accept_backlog``: streams the peer may open that wait for :meth:`Session.accept_stream`
      (more are reset), and streams this side may have opened but not yet seen
      acknowledged (:meth:`Session.open_stream` waits beyond that).
    * ``enable_keepalive`` / ``keepalive_interval``: ping the peer every interval;
      a ping that is not answered within ``connection_write_timeout`` closes the session.
    * ``connection_write_timeout``: the longest one write to the underlying stream (or
      one ping) may take before the connection is deemed dead and the session closed.
    * ``max_stream_window_size``: the receive window each stream grows to (at least
      256 KiB; larger windows speed up bulk transfers on high-latency links).
    * ``stream_open_timeout``: a stream whose open is not acknowledged within this
      time closes the session (0 disables).
    * ``stream_close_timeout``: a stream this side closed but whose peer never closes
      its half is reset after this time (0 disables).
    """

    accept_backlog: int = attrs.field(default=256, validator=_positive)
    enable_keepalive: bool = True
    keepalive_interval: float = attrs.field(default=30.0, validator=_positive)
    connection_write_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_stream_window_size: int = attrs.field(default=INITIAL_STREAM_WINDOW, validator=_window)
    stream_open_timeout: float = attrs.field(default=75.0, validator=_not_negative)
    stream_close_timeout: float = attrs.field(default=300.0, validator=_not_negative)
