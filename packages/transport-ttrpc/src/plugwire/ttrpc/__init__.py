"""plugwire.ttrpc: a containerd/ttrpc client and server on anyio (asyncio and trio).

Wire compatible with github.com/containerd/ttrpc (unary and all streaming kinds,
metadata, ``timeout_nano`` deadlines, gRPC status codes with details, the upstream
stream-id rules and error replies, a 4 MiB default message limit).

Connections
-----------
- ``await Client.connect("unix:/run/x.sock")`` / ``Client.connect("127.0.0.1:9000")``
- ``async with server.listen("unix:/run/x.sock") as bound: ...`` (or ``await server.serve(addr)``)
- **Over any anyio byte stream** (a multiplexer channel, a TLS stream, a memory
  pipe): ``Client.from_stream(stream)`` gives a client that needs no task group;
  ``await Server.serve_stream(stream)`` serves that one connection until it ends.
  This is how NRI runs a ttrpc client and a ttrpc server over one muxed socket.
- Over an existing connected socket or file descriptor:
  ``await Client.from_socket(sock_or_fd)``, ``await server.serve_socket(sock_or_fd)``.
- ``Server(handshake=require_same_user())`` refuses unix peers with other credentials;
  ``server.listen(addr, grace=5)`` lets calls in flight finish when leaving.

Services
--------
Messages come from ordinary ``.proto`` files (``protoc --python_out``); services
are bound from their descriptors: ``server.add_servicer(servicer, descriptor)``
and ``ServiceClient(client, descriptor)``. Servicers follow the grpc.aio convention, so the
same class is served by grpc through ``plugwire.grpc.binding``. See docs/ttrpc.md.
"""

from __future__ import annotations

from ._frame import MAX_MESSAGE_SIZE
from .client import Client, ClientStream, Metadata
from .credentials import (
    CredentialsError,
    PeerCheck,
    PeerCredentials,
    peer_credentials,
    require_root,
    require_same_user,
    require_uid_gid,
)
from .errors import DeadlineExceededError, OversizedMessageError
from .server import MethodHandler, Server, ServerContext
from .service import MessageStream, ServiceClient, message_class, method_handlers
from .transport import TtrpcTransport

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Client",
    "ClientStream",
    "CredentialsError",
    "DeadlineExceededError",
    "MessageStream",
    "Metadata",
    "MethodHandler",
    "OversizedMessageError",
    "PeerCheck",
    "PeerCredentials",
    "Server",
    "ServerContext",
    "ServiceClient",
    "TtrpcTransport",
    "message_class",
    "method_handlers",
    "peer_credentials",
    "require_root",
    "require_same_user",
    "require_uid_gid",
]
