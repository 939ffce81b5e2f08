"""Where a peer listens: :class:`Address` (re-exported by :mod:`plugwire.core.transport`).

Its own module so that code needing only an address (a plugin announcing where it
listens) does not load the transport machinery at start-up.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .errors import ConfigError

__all__ = ["Address"]


def _check_network(_inst: object, _attr: object, value: str) -> None:
    if value not in ("unix", "tcp", "inproc"):
        raise ConfigError(
            "unknown network", step="address", expected="unix, tcp or inproc", seen=value
        )


@attrs.frozen
class Address:
    """Where a peer listens.

    ``Address("unix", "/run/p.sock")`` or ``Address("tcp", "127.0.0.1:1234")``.
    """

    network: Literal["unix", "tcp", "inproc"] = attrs.field(validator=_check_network)
    address: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``unix:/path``, ``tcp:host:port``, ``inproc:name`` or a bare ``host:port``."""
        network, sep, rest = text.partition(":")
        if sep and network in ("unix", "tcp", "inproc"):
            return cls(network, rest)  # type: ignore[arg-type]
        if text.startswith("/"):
            return cls("unix", text)
        host, sep, port = text.rpartition(":")
        if sep and host and port.isdigit():
            return cls("tcp", text)
        raise ConfigError(
            "cannot parse address",
            step="address",
            expected="unix:/path, tcp:host:port or host:port",
            seen=text,
        )

    def __str__(self) -> str:
        return f"{self.network}:{self.address}"
