"""CIPD deployment admission plugins, wire-compatible with LUCI's plugin protocol.

Host side: :class:`CipdHost` serves the protocol and launches plugins;
:meth:`CipdHost.admission_plugin` returns an :class:`AdmissionPlugin` whose
``check_admission(pin)`` gives a :class:`~plugwire.core.promise.Promise`.
Plugin side: :func:`plugwire.grpc.cipd.plugin.run` / ``main`` with a handler.

grpc.aio only runs on asyncio: both sides refuse trio with
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

from .errors import AdmissionAbortedError, AdmissionDeniedError, InvalidPinError, not_admitted
from .handshake import TICKET_METADATA_KEY, PluginHandshake, new_ticket
from .host import AdmissionPlugin, CipdHost
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
from .plugin import PROTOCOL_VERSION, Admission, Handler, InstanceInfo, main, run

__all__ = [
    "DEFAULT_PAGE_SIZE",
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
    "main",
    "new_ticket",
    "not_admitted",
    "object_ref_to_instance_id",
    "run",
    "validate_package_name",
]
