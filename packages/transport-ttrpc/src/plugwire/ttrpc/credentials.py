"""Connection handshakes on peer credentials (Go's ``UnixSocketRequire*`` options).

A server built with ``Server(handshake=require_same_user())`` checks every accepted
unix-socket connection's ``SO_PEERCRED`` before speaking ttrpc and closes the ones
that fail (logging why), as containerd's shims do. Connections served with
:meth:`~plugwire.ttrpc.Server.serve_stream` have no socket and are not checked.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable

import attrs

from plugwire.core.errors import HandshakeError

__all__ = [
    "CredentialsError",
    "PeerCheck",
    "PeerCredentials",
    "peer_credentials",
    "require_root",
    "require_same_user",
    "require_uid_gid",
]

#: A check run on each accepted socket; raise to refuse the connection (Go's
#: ``ttrpc.Handshaker``; not to be confused with :class:`plugwire.core.Handshake`).
PeerCheck = Callable[[socket.socket], object]

_UCRED = struct.Struct("3i")


class CredentialsError(HandshakeError):
    """The peer's credentials do not satisfy the server's handshake."""


@attrs.frozen
class PeerCredentials:
    """Process id, user id and group id of the process at the other end of a unix socket."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """``SO_PEERCRED`` of a connected unix socket.

    Raises :class:`CredentialsError` for a non-unix socket or where the platform has
    no ``SO_PEERCRED``.
    """
    if sock.family != socket.AF_UNIX:
        raise CredentialsError(
            "a unix socket connection is required", step="handshake", seen=str(sock.family)
        )
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        raise CredentialsError("SO_PEERCRED is not available on this platform", step="handshake")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, opt, _UCRED.size)
    except OSError as exc:
        raise CredentialsError(
            f"failed to retrieve socket peer credentials: {exc}", step="handshake"
        ) from exc
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid, uid, gid)


def require_uid_gid(uid: int = -1, gid: int = -1) -> PeerCheck:
    """Accept only peers with this uid and gid (-1: any), like Go's ``UnixSocketRequireUidGid``."""

    def check(sock: socket.socket) -> PeerCredentials:
        cred = peer_credentials(sock)
        if (uid != -1 and cred.uid != uid) or (gid != -1 and cred.gid != gid):
            raise CredentialsError(
                "ttrpc: invalid credentials: operation not permitted",
                step="handshake",
                expected=f"uid {uid}, gid {gid}",
                seen=f"uid {cred.uid}, gid {cred.gid}, pid {cred.pid}",
            )
        return cred

    return check


def require_root() -> PeerCheck:
    """Accept only peers running as root (uid 0, gid 0)."""
    return require_uid_gid(0, 0)


def require_same_user() -> PeerCheck:
    """Accept only peers running as this process's effective uid and gid."""
    return require_uid_gid(os.geteuid(), os.getegid())
