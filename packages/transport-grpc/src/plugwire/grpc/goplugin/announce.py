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

#: Go's ``unicode.IsSpace`` (what ``strings.TrimSpace`` trims); Python's
#: ``str.strip`` also trims U+001C..U+001F, which go-plugin keeps.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)

#: go-plugin reads the line with a ``bufio.Scanner``: a longer line is never seen.
GO_MAX_LINE = 64 * 1024 - 1

_GO_INT = re.compile(r"[+-]?[0-9]+")


def go_atoi(text: str) -> int | None:
    """``strconv.Atoi`` on a 64-bit platform: ASCII digits with an optional sign,
    no spaces, no underscores, within int64; ``None`` where Go errors."""
    if not _GO_INT.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


#: ``strconv.ParseBool``.
_GO_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}

# What a protocol (wire) name may look like (see :mod:`.wires`).
_WIRE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


def b64_der(der: bytes) -> str:
    """DER bytes as go's ``base64.RawStdEncoding`` (no ``=`` padding)."""
    return base64.b64encode(der).decode("ascii").rstrip("=")


def der_from_b64(text: str) -> bytes:
    """Decode as go's ``base64.RawStdEncoding.DecodeString``: no ``=`` padding,
    ``\r``/``\n`` ignored, a length that leaves one spare character refused."""
    text = text.replace("\r", "").replace("\n", "")
    if "=" in text or len(text) % 4 == 1:
        raise ValueError("illegal base64 data")
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
    if len(line.encode("utf-8", "surrogatepass")) > GO_MAX_LINE:
        raise AnnounceError(
            "the announce line is longer than go-plugin reads (bufio.Scanner: token too long)",
            peer=peer,
            step="announce",
            expected=f"<= {GO_MAX_LINE} bytes",
            seen=f"{len(line)} characters",
        )
    text = line.strip(GO_SPACE)
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
    core = go_atoi(parts[0])
    if core is None:
        raise AnnounceError(
            "error parsing core protocol version",
            peer=peer,
            step="announce",
            expected="an integer (strconv.Atoi)",
            seen=parts[0],
        )
    if core != CORE_PROTOCOL_VERSION:
        raise CoreVersionError(
            "incompatible core API version with plugin; the plugin usually only needs to be "
            "rebuilt against a current go-plugin",
            peer=peer,
            step="announce",
            expected=CORE_PROTOCOL_VERSION,
            seen=core,
        )
    app = go_atoi(parts[1])
    if app is None:
        raise AnnounceError(
            "error parsing protocol version",
            peer=peer,
            step="announce",
            expected="an integer (strconv.Atoi)",
            seen=parts[1],
        )
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
        # go-plugin fails later, when it dials "": the same refusal, said earlier.
        raise AnnounceError("empty plugin address", peer=peer, step="announce", seen=text)
    if network == "tcp":
        why = _go_tcp_address_problem(address)
        if why:
            raise AnnounceError(
                f"cannot resolve the plugin's TCP address: {why}",
                peer=peer,
                step="announce",
                expected="HOST:PORT as net.ResolveTCPAddr takes it",
                seen=address,
            )
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
    # go-plugin: "Checking if the length is > 50 rules out catching the unused
    # 'extra' data returned from some older implementations."
    if len(parts) >= 6 and len(parts[5]) > 50:
        try:
            cert = der_from_b64(parts[5])
            _check_der_certificate(cert)
        except (binascii.Error, ValueError):
            raise AnnounceError(
                "error parsing server cert",
                peer=peer,
                step="announce",
                expected="unpadded base64 of a DER certificate",
                seen=parts[5],
            ) from None
    # go-plugin reads field 7 only when it asked for multiplexing over gRPC.
    mux: bool | None = _GO_BOOL.get(parts[6]) if len(parts) >= 7 else None
    if want_multiplex and protocol == "grpc":
        if len(parts) >= 7 and mux is None:
            raise AnnounceError(
                f"error parsing {parts[6]!r} as a boolean for gRPC broker multiplexing support",
                peer=peer,
                step="announce",
                expected="a strconv.ParseBool value",
                seen=parts[6],
            )
        if not mux:
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


def _check_der_certificate(der: bytes) -> None:
    """``x509.ParseCertificate``: raise ``ValueError`` for bytes that are not one."""
    from cryptography import x509

    x509.load_der_x509_certificate(der)


def _go_tcp_address_problem(address: str) -> str:
    """What ``net.SplitHostPort`` and the port lookup of ``net.ResolveTCPAddr`` object
    to in ``address`` ("" when nothing; host names are resolved when dialled)."""
    i = address.rfind(":")
    if i < 0:
        return "missing port in address"
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            return "missing ']' in address"
        if end + 1 == len(address):
            return "missing port in address"
        if end + 1 != i:
            return "too many colons in address" if address[end + 1] == ":" else "missing port"
        if "[" in address[1:] or "]" in address[end + 1 :]:
            return "unexpected bracket in address"
    else:
        if ":" in address[:i]:
            return "too many colons in address"
        if "[" in address or "]" in address:
            return "unexpected bracket in address"
    port = address[i + 1 :]
    if port == "":
        return ""
    if port.isascii() and port.isdigit():
        return "" if int(port) <= 0xFFFF else "invalid port"
    import socket

    try:
        socket.getservbyname(port, "tcp")
    except OSError:
        return f"unknown port {port}"
    return ""
