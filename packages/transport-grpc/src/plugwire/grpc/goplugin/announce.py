"""The go-plugin announce line: ``CORE|APP|NETWORK|ADDR|PROTOCOL|CERT[|MUX]``.

A plugin prints exactly one such line on stdout once it listens; the host parses
it. ``CERT`` is always present (empty without AutoMTLS) and carries the server
certificate's DER as unpadded standard base64; the 7th field ``true`` appears only
when the host set ``PLUGIN_MULTIPLEX_GRPC``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection

import attrs

from plugwire.core.errors import VersionMismatchError

from .errors import (
    AnnounceError,
    CoreVersionError,
    MultiplexNotSupportedError,
    NegotiationError,
    UnsupportedProtocolError,
)

__all__ = ["CORE_PROTOCOL_VERSION", "Announce", "parse_announce"]

#: go-plugin's CoreProtocolVersion.
CORE_PROTOCOL_VERSION = 1

# What a protocol (wire) name may look like (see :mod:`.wires`).
_WIRE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


def b64_der(der: bytes) -> str:
    """DER bytes as go's ``base64.RawStdEncoding`` (no ``=`` padding)."""
    return base64.b64encode(der).decode("ascii").rstrip("=")


def der_from_b64(text: str) -> bytes:
    """Decode unpadded (or padded) standard base64."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@attrs.frozen
class Announce:
    """One parsed announce line.

    ``server_cert`` is the DER certificate (``None`` without TLS); ``multiplex`` is
    the 7th field (``None`` when absent).
    """

    app_version: int
    network: str
    address: str
    protocol: str = "grpc"
    server_cert: bytes | None = None
    multiplex: bool | None = None
    core_version: int = CORE_PROTOCOL_VERSION

    def format(self) -> str:
        """The line a plugin prints (without the newline)."""
        cert = b64_der(self.server_cert) if self.server_cert else ""
        line = (
            f"{self.core_version}|{self.app_version}|{self.network}|{self.address}"
            f"|{self.protocol}|{cert}"
        )
        if self.multiplex is not None:
            line += "|true" if self.multiplex else "|false"
        return line


def parse_announce(
    line: str,
    *,
    versions: Collection[int],
    allowed_protocols: Collection[str] = ("grpc",),
    want_multiplex: bool = False,
    peer: str | None = None,
) -> Announce:
    """Parse and check a plugin's announce line, as go-plugin's ``PluginClient.Start`` does.

    Raises :class:`AnnounceError` for a line that is not an announce line,
    :class:`CoreVersionError` for a core version other than 1,
    :class:`~plugwire.core.errors.VersionMismatchError` when the app version is not
    one of ``versions``, :class:`UnsupportedProtocolError` for a protocol not in
    ``allowed_protocols`` and :class:`MultiplexNotSupportedError` when
    ``want_multiplex`` and the plugin did not answer ``true`` in field 7.
    """
    text = line.strip()
    parts = text.split("|")
    if len(parts) < 4:
        raise AnnounceError(
            "Unrecognized remote plugin message: the plugin must print its announce line "
            "first on stdout and nothing before it",
            peer=peer,
            step="announce",
            expected="CORE|APP|NETWORK|ADDR|PROTOCOL|CERT",
            seen=text if text else "(empty line or end of stdout)",
        )
    try:
        core = int(parts[0])
    except ValueError:
        raise AnnounceError(
            "error parsing core protocol version",
            peer=peer,
            step="announce",
            expected="an integer",
            seen=parts[0],
        ) from None
    if core != CORE_PROTOCOL_VERSION:
        raise CoreVersionError(
            "incompatible core API version with plugin; the plugin usually only needs to be "
            "rebuilt against a current go-plugin",
            peer=peer,
            step="announce",
            expected=CORE_PROTOCOL_VERSION,
            seen=core,
        )
    try:
        app = int(parts[1])
    except ValueError:
        raise AnnounceError(
            "error parsing protocol version",
            peer=peer,
            step="announce",
            expected="an integer",
            seen=parts[1],
        ) from None
    if app not in versions:
        raise VersionMismatchError(
            f"incompatible API version with plugin: plugin version {app}, "
            f"client versions {sorted(versions)}",
            offered=[app],
            supported=sorted(versions),
            peer=peer,
        )
    network, address = parts[2], parts[3]
    if network not in ("unix", "tcp"):
        raise AnnounceError(
            "unknown address type", peer=peer, step="announce", expected="unix or tcp", seen=network
        )
    if not address:
        raise AnnounceError("empty plugin address", peer=peer, step="announce", seen=text)
    protocol = parts[4] if len(parts) >= 5 else "netrpc"
    if not _WIRE_NAME.fullmatch(protocol):
        raise NegotiationError(
            "the plugin's protocol field does not parse",
            peer=peer,
            step="announce protocol",
            expected=f"a wire name, one of {sorted(allowed_protocols)}",
            seen=protocol if protocol else "(empty)",
        )
    if protocol not in allowed_protocols:
        raise UnsupportedProtocolError(
            f"unsupported plugin protocol {protocol!r}",
            peer=peer,
            step="announce",
            expected=f"one of {sorted(allowed_protocols)}",
            seen=protocol,
        )
    cert: bytes | None = None
    if len(parts) >= 6 and parts[5]:
        try:
            cert = der_from_b64(parts[5])
        except (binascii.Error, ValueError):
            raise AnnounceError(
                "error parsing server cert",
                peer=peer,
                step="announce",
                expected="unpadded base64 of a DER certificate",
                seen=parts[5],
            ) from None
    mux: bool | None = None
    if len(parts) >= 7:
        value = parts[6].strip().lower()
        if value in ("true", "1", "t"):
            mux = True
        elif value in ("false", "0", "f"):
            mux = False
        else:
            raise AnnounceError(
                "cannot parse the multiplexing field",
                peer=peer,
                step="announce",
                expected="true or false",
                seen=parts[6],
            )
    if want_multiplex and not mux:
        raise MultiplexNotSupportedError(
            "client requested gRPC broker multiplexing but plugin does not support the feature",
            peer=peer,
            step="announce",
            expected="a 7th field 'true'",
            seen=text,
        )
    return Announce(
        app_version=app,
        network=network,
        address=address,
        protocol=protocol,
        server_cert=cert,
        multiplex=mux,
        core_version=core,
    )
