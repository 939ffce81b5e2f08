"""The go-plugin side of a Kubernetes plugin, on top of :mod:`plugwire.grpc`.

A plugin in a pod is not a child process, so the host does what go-plugin's
``PluginClient`` does after reading the announce line — through ``plugwire.grpc``: the
announce line is parsed by :func:`plugwire.grpc.goplugin.parse_announce`, and the connection is
a :class:`plugwire.grpc.goplugin.PluginClient` *reattached* to the address where the plugin can be
reached from here (the port-forward's local address or the Service), with the AutoMTLS
config built from the host certificate (:func:`plugwire.grpc.mtls.generate_cert`)
and the server certificate from the announce line. Dispense, ping, broker, stdio and
the Shutdown RPC are plugwire.grpc's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from plugwire.core.errors import HandshakeError
from plugwire.core.transport import Address
from plugwire.grpc.goplugin import (
    Announce,
    ClientConfig,
    GrpcPlugin,
    PluginClient,
    ReattachConfig,
    ServicePlugin,
)
from plugwire.grpc.goplugin import parse_announce as _parse_announce
from plugwire.grpc.mtls import Certificate, TLSConfig, der_to_pem, generate_cert

__all__ = [
    "Announce",
    "Certificate",
    "PluginFactory",
    "as_grpc_plugins",
    "connect",
    "generate_cert",
    "looks_like_announce",
    "parse_announce",
]

#: What ``plugins=`` accepts per name: a :class:`plugwire.grpc.goplugin.GrpcPlugin` or a stub
#: factory taking the gRPC channel (a generated ``...Stub`` class fits).
PluginFactory = GrpcPlugin | Callable[[Any], Any]

_ANNOUNCE = re.compile(r"^\d+\|\d+\|(tcp|unix)\|[^|]*\|[a-z]+\|[A-Za-z0-9+/=]*(\|(true|false))?$")


def looks_like_announce(line: str) -> bool:
    """Whether a log line has the shape of a go-plugin announce line."""
    return bool(_ANNOUNCE.match(line.strip()))


def parse_announce(line: str, *, versions: tuple[int, ...], peer: str | None = None) -> Announce:
    """:func:`plugwire.grpc.goplugin.parse_announce`, plus the Kubernetes rule: TCP only.

    A plugin announcing a unix socket cannot be reached from outside its pod:
    :class:`HandshakeError`.
    """
    announce = _parse_announce(line, versions=versions, peer=peer)
    if announce.network != "tcp":
        raise HandshakeError(
            "the plugin listens on a unix socket, which cannot be reached from outside its pod",
            peer=peer,
            step="announce",
            expected="a tcp address on the container port (a Kubernetes plugin must serve TCP)",
            seen=f"{announce.network}:{announce.address}",
        )
    return announce


def as_grpc_plugins(plugins: Mapping[str, PluginFactory]) -> dict[str, GrpcPlugin]:
    """``plugins=`` with bare stub factories wrapped as :class:`ServicePlugin`."""
    return {
        name: p if isinstance(p, GrpcPlugin) else ServicePlugin(stub=p)
        for name, p in plugins.items()
    }


async def connect(
    target: str,
    announce: Announce,
    *,
    handshake: Any,
    plugins: Mapping[str, PluginFactory],
    own_cert: Certificate | None,
    peer: str,
) -> PluginClient:
    """A started :class:`plugwire.grpc.goplugin.PluginClient` connected to ``target``
    (``host:port``).

    With a server certificate in the announce line the connection is mutual TLS
    (``own_cert`` presented, the announced certificate the only trusted root, server
    name ``localhost``). The client is marked ``test`` so that killing it only sends
    the Shutdown RPC: the pod is not a process of ours. Raises
    :class:`HandshakeError` when the plugin serves TLS and the host made no
    certificate (``auto_mtls=False``).
    """
    tls = None
    if announce.server_cert is not None:
        if own_cert is None:
            raise HandshakeError(
                "the plugin serves TLS but the host made no client certificate",
                peer=peer,
                step="connect",
                expected="auto_mtls=True",
                seen="auto_mtls=False",
            )
        tls = TLSConfig.mutual(own_cert, der_to_pem(announce.server_cert))
    config = ClientConfig(
        handshake=handshake,
        plugins=as_grpc_plugins(plugins),
        reattach=ReattachConfig(
            protocol_version=announce.app_version,
            address=Address("tcp", target),
            protocol=announce.protocol,
            test=True,
        ),
        tls=tls,
        name=peer,
    )
    client = PluginClient(config)
    await client.start()
    return client
