"""CIPD deployment admission plugins, wire-compatible with LUCI's plugin protocol.

Host side: :class:`CipdHost` (composing a core :class:`~plugwire.core.host.Host`)
serves the protocol; ``await host.launch(argv)`` returns an :class:`AdmissionPlugin`
(a core plugin handle) whose ``check_admission(pin)`` gives a
:class:`~plugwire.core.promise.Promise`. Plugin side:
:func:`~plugwire.grpc.cipd.plugin.serve` (blocking) / ``serve_async`` with a handler.

grpc.aio only runs on asyncio: both sides refuse trio with
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

from .admission import CAPABILITIES, DEFAULT_SHUTDOWN, AdmissionPlugin
from .errors import AdmissionAbortedError, AdmissionDeniedError, InvalidPinError, not_admitted
from .handshake import TICKET_METADATA_KEY, PluginHandshake, new_ticket
from .host import CipdHost
from .metadata import (
    DEFAULT_PAGE_SIZE,
    MetadataEntry,
    MetadataPage,
    MetadataQuery,
    MetadataSource,
    StaticMetadataSource,
)
from .pins import (
    HashAlgo,
    ObjectRef,
    Pin,
    instance_id_to_object_ref,
    object_ref_to_instance_id,
    validate_package_name,
)
from .plugin import PROTOCOL_VERSION, Admission, Handler, InstanceInfo, serve, serve_async

__all__ = [
    "CAPABILITIES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SHUTDOWN",
    "PROTOCOL_VERSION",
    "TICKET_METADATA_KEY",
    "Admission",
    "AdmissionAbortedError",
    "AdmissionDeniedError",
    "AdmissionPlugin",
    "CipdHost",
    "Handler",
    "HashAlgo",
    "InstanceInfo",
    "InvalidPinError",
    "MetadataEntry",
    "MetadataPage",
    "MetadataQuery",
    "MetadataSource",
    "ObjectRef",
    "Pin",
    "PluginHandshake",
    "StaticMetadataSource",
    "instance_id_to_object_ref",
    "new_ticket",
    "not_admitted",
    "object_ref_to_instance_id",
    "serve",
    "serve_async",
    "validate_package_name",
]
