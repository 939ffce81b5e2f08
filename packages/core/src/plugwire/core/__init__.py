"""plugwire.core: the shared model under every plugwire transport."""

from __future__ import annotations

from .errors import *  # noqa: F403  (re-exported below)
from .status import StatusCode
from .transport import Address, Channel, InProcessTransport, Transport, available_transports, load_transport

__version__ = "0.1.0"
