"""Task plugins out of process: the :class:`~plugwire.core.tasks.TaskPlugin` interface over gRPC.

Host side — register a provider whose plugin runs in another process::

    from plugwire.grpc.tasks import RemoteProvider
    registry.register("shout", RemoteProvider(["python", "shout_plugin.py"]))

Plugin side — serve any provider from a process the host launches::

    from plugwire.grpc.tasks import serve
    serve(ShoutProvider())          # or: python -m plugwire.grpc.tasks mod:Provider

The wire is ``plugwire.tasks.v1.TaskPluginService`` (``_proto/task_plugin.proto``)
over a unix socket, announced go-plugin style on stdout. See docs/task-plugins.md.
"""

from __future__ import annotations

from ._demo import demo_rows
from ._wire import HANDSHAKE, PROTOCOL_VERSIONS, SERVICE
from .client import RemotePlugin, RemoteProvider, RemoteTaskPlugin
from .server import serve, serve_async

__all__ = [
    "HANDSHAKE",
    "PROTOCOL_VERSIONS",
    "SERVICE",
    "RemotePlugin",
    "RemoteProvider",
    "RemoteTaskPlugin",
    "demo_rows",
    "serve",
    "serve_async",
]
