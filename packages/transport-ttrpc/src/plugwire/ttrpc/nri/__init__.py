"""containerd NRI for Python: write NRI plugins (:class:`Stub`) and host them (:class:`Runtime`).

On the runtime side each plugin connection is an :class:`NriPlugin`, a core plugin
handle run by the runtime's :class:`plugwire.core.Host`; what it may call back
(:data:`CAPABILITIES`) is its :class:`plugwire.core.Controller`'s.

Wire-compatible with ``github.com/containerd/nri`` (see ``NRI_MODULE_VERSION``): one
socket multiplexed into a Plugin and a Runtime ttrpc service (:mod:`.mux`), upstream's
adjustment merge with conflict detection (:mod:`.result`), and builders for
adjustments and updates (:mod:`.adjust`).
"""

from __future__ import annotations

from ._generated.api_pb2 import (
    Container,
    ContainerAdjustment,
    ContainerUpdate,
    CreateContainerRequest,
    CreateContainerResponse,
    LinuxResources,
    Mount,
    PodSandbox,
    UpdateContainerRequest,
    UpdateContainerResponse,
    ValidateContainerAdjustmentRequest,
)
from .adjust import Adjustment, Update
from .api import (
    DEFAULT_REGISTRATION_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SOCKET_PATH,
    NRI_MODULE_VERSION,
    VALID_EVENTS,
    ConflictError,
    Event,
    NriError,
    PluginRejectedError,
    check_plugin_index,
    event_mask,
    events_in,
    parse_plugin_name,
)
from .discovery import InstalledPlugin
from .mux import Multiplexer, MuxConn
from .plugin import NRI_SHUTDOWN, NriPlugin
from .registration import CAPABILITIES, REGISTER_PLUGIN, UPDATE_CONTAINERS, GrantFn
from .result import Owners, Result
from .runtime import PluginInfo, Runtime, SyncCallback, SyncFn, UpdateFn
from .stub import Stub

__all__ = [
    "CAPABILITIES",
    "DEFAULT_REGISTRATION_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SOCKET_PATH",
    "NRI_MODULE_VERSION",
    "NRI_SHUTDOWN",
    "REGISTER_PLUGIN",
    "UPDATE_CONTAINERS",
    "VALID_EVENTS",
    "Adjustment",
    "ConflictError",
    "Container",
    "ContainerAdjustment",
    "ContainerUpdate",
    "CreateContainerRequest",
    "CreateContainerResponse",
    "Event",
    "GrantFn",
    "InstalledPlugin",
    "LinuxResources",
    "Mount",
    "Multiplexer",
    "MuxConn",
    "NriError",
    "NriPlugin",
    "Owners",
    "PluginInfo",
    "PluginRejectedError",
    "PodSandbox",
    "Result",
    "Runtime",
    "Stub",
    "SyncCallback",
    "SyncFn",
    "Update",
    "UpdateContainerRequest",
    "UpdateContainerResponse",
    "UpdateFn",
    "ValidateContainerAdjustmentRequest",
    "check_plugin_index",
    "event_mask",
    "events_in",
    "parse_plugin_name",
]
