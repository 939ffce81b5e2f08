"""plugwire.kube: go-plugin plugins deployed to Kubernetes, hosted from Python.

``async with KubePlugin(handshake=..., plugins=..., spec=PluginSpec(...)) as plugin``
(or ``await host.launch(KubePlugin(...))`` on a :class:`plugwire.core.Host`) deploys
the plugin as a Deployment + owner-referenced Service, waits for a ready pod, reads
the announce line from its log, reaches it through the API server's port-forward (or
directly in-cluster), connects over gRPC with AutoMTLS, and deletes what it created
when closed. :func:`discover` lists deployed plugins. asyncio only (grpc.aio).
"""

from __future__ import annotations

from .api import DEFAULT_TIMEOUT, KubeAPI, load_api_client
from .discover import DiscoveredPlugin, discover
from .errors import KubeAPIError, KubeValidationError, PluginAnnounceError, PluginNotReadyError
from .goplugin import PluginFactory, as_grpc_plugins, looks_like_announce, parse_announce
from .objects import CreatedObject
from .plugin import DEFAULT_SHUTDOWN, Access, KubePlugin, in_cluster, resolve_access
from .portforward import PortForwarder, port_forward
from .readiness import explain_not_ready, wait_ready
from .retry import DEFAULT_BACKOFF, Backoff, is_retryable
from .spec import DEFAULT_PORT, LABEL_PLUGIN, PluginSpec, PreparedPlugin, host_env, prepare
from .validation import validate_deployment, validate_service

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_PORT",
    "DEFAULT_SHUTDOWN",
    "DEFAULT_TIMEOUT",
    "LABEL_PLUGIN",
    "Access",
    "Backoff",
    "CreatedObject",
    "DiscoveredPlugin",
    "KubeAPI",
    "KubeAPIError",
    "KubePlugin",
    "KubeValidationError",
    "PluginAnnounceError",
    "PluginFactory",
    "PluginNotReadyError",
    "PluginSpec",
    "PortForwarder",
    "PreparedPlugin",
    "as_grpc_plugins",
    "discover",
    "explain_not_ready",
    "host_env",
    "in_cluster",
    "is_retryable",
    "load_api_client",
    "looks_like_announce",
    "parse_announce",
    "port_forward",
    "prepare",
    "resolve_access",
    "validate_deployment",
    "validate_service",
    "wait_ready",
]
