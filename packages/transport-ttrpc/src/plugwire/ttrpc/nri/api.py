"""NRI API vocabulary: messages, events, plugin names, defaults and errors.

The message classes are the protobuf messages generated from containerd/nri's
``pkg/api/api.proto`` (see ``scripts/codegen_nri.sh``), re-exported under their
upstream names (:class:`PodSandbox`, :class:`Container`, :class:`ContainerAdjustment`,
:class:`ContainerUpdate`...). Builders for adjustments and updates live in
:mod:`plugwire.ttrpc.nri.adjust`.
"""

from __future__ import annotations

import enum
import re

from plugwire.core.errors import ConfigError, PlugwireError

from ._generated import NRI_MODULE_VERSION
from ._generated import api_pb2 as pb

__all__ = [
    "DEFAULT_REGISTRATION_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SOCKET_PATH",
    "NRI_MODULE_VERSION",
    "PLUGIN_IDX_ENV",
    "PLUGIN_NAME_ENV",
    "PLUGIN_SERVICE",
    "PLUGIN_SOCKET_ENV",
    "RUNTIME_SERVICE",
    "VALID_EVENTS",
    "ConflictError",
    "Event",
    "NriError",
    "PluginRejectedError",
    "check_plugin_index",
    "check_plugin_name",
    "event_mask",
    "events_in",
    "parse_plugin_name",
    "pb",
]

DEFAULT_SOCKET_PATH = "/var/run/nri/nri.sock"
PLUGIN_SOCKET_ENV = "NRI_PLUGIN_SOCKET"
PLUGIN_NAME_ENV = "NRI_PLUGIN_NAME"
PLUGIN_IDX_ENV = "NRI_PLUGIN_IDX"
DEFAULT_REGISTRATION_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 2.0

PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"


class Event(enum.IntEnum):
    """NRI events; a plugin subscribes with the bit ``1 << (event - 1)``."""

    RUN_POD_SANDBOX = 1
    STOP_POD_SANDBOX = 2
    REMOVE_POD_SANDBOX = 3
    CREATE_CONTAINER = 4
    POST_CREATE_CONTAINER = 5
    START_CONTAINER = 6
    POST_START_CONTAINER = 7
    UPDATE_CONTAINER = 8
    POST_UPDATE_CONTAINER = 9
    STOP_CONTAINER = 10
    REMOVE_CONTAINER = 11
    UPDATE_POD_SANDBOX = 12
    POST_UPDATE_POD_SANDBOX = 13
    VALIDATE_CONTAINER_ADJUSTMENT = 14

    @property
    def bit(self) -> int:
        return 1 << (self.value - 1)

    @property
    def pretty_name(self) -> str:
        """Upstream's name (``CreateContainer``), also the handler/RPC name."""
        return "".join(part.capitalize() for part in self.name.split("_"))


_LAST = 15
#: Every valid event bit (upstream ``api.ValidEvents``).
VALID_EVENTS = (1 << (_LAST - 1)) - 1


def event_mask(*events: Event) -> int:
    """The subscription mask for ``events``."""
    mask = 0
    for event in events:
        mask |= event.bit
    return mask


def events_in(mask: int) -> list[Event]:
    """The events whose bits are set in ``mask``, in event order."""
    return [event for event in Event if mask & event.bit]


class NriError(PlugwireError):
    """An NRI operation failed (the message is upstream's wording where it has one)."""


class ConflictError(NriError):
    """Two plugins tried to set the same field of one container.

    ``str()`` carries upstream's text: ``plugins "10-b" and "05-a" both tried to set
    Env FOO``. ``field`` is the :class:`Field` name, ``plugins`` the two names.
    """

    def __init__(self, message: str, *, field: str, plugins: tuple[str, str], key: str) -> None:
        super().__init__(message, peer=plugins[0], step="merge adjustments")
        self.field = field
        self.plugins = plugins
        self.key = key


class PluginRejectedError(NriError):
    """A validator plugin rejected the merged container adjustment."""


_INDEX = re.compile(r"^[0-9]{2}$")


def check_plugin_index(idx: str) -> None:
    """Raise :class:`ConfigError` unless ``idx`` is exactly two digits."""
    if len(idx) != 2:
        raise ConfigError(
            f"invalid plugin index {idx!r}, must be 2 digits",
            step="plugin name",
            expected="two digits, e.g. '10'",
            seen=idx,
        )
    if not _INDEX.match(idx):
        raise ConfigError(
            f"invalid plugin index {idx!r} (not [0-9][0-9])",
            step="plugin name",
            expected="[0-9][0-9]",
            seen=idx,
        )


def parse_plugin_name(name: str) -> tuple[str, str]:
    """Split ``NN-name`` into ``(index, base)`` as upstream's ``ParsePluginName``."""
    idx, sep, base = name.partition("-")
    if not sep:
        raise ConfigError(
            f"invalid plugin name {name!r}, idx-pluginname expected",
            step="plugin name",
            expected="NN-name",
            seen=name,
        )
    check_plugin_index(idx)
    return idx, base


def check_plugin_name(name: str) -> None:
    """Reject a registered plugin name as upstream's ``CheckPluginName`` does."""
    if not name:
        raise ConfigError(
            "invalid plugin name: name is empty", step="plugin name", expected="a name"
        )
    for char in name:
        if not (char.isascii() and (char.isalnum() or char in "-_.+")):
            raise ConfigError(
                f"invalid plugin name {name!r}: contains invalid character {char!r}",
                step="plugin name",
                expected="[A-Za-z0-9_.+-]",
                seen=name,
            )
