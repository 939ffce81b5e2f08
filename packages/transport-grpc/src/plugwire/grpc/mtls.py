"""AutoMTLS and TLS material, as go-plugin does it.

Each side makes a throwaway self-signed ECDSA certificate (CN and DNS name
``localhost``, client and server auth, a CA so the peer can trust it directly).
The host passes its PEM to the plugin in ``PLUGIN_CLIENT_CERT``; the plugin answers
with its DER in the announce line. Each side then uses its one certificate for
both roles and trusts exactly the peer's: the plugin's server requires and verifies
the host's certificate, the host verifies the plugin's for server name
``localhost``. Broker connections reuse the same material.

go-plugin makes both certificates on P-521. A plugwire host does too
(:func:`generate_cert`'s default); a plugwire plugin announces a P-256 one
(:data:`PLUGIN_CURVE`): every TLS handshake costs both ends a signature with the
plugin's key and the host a verification of it, and P-521's cost several times
P-256's (in Go's ``crypto/tls`` most of all). Go's ``crypto/tls``, OpenSSL and
BoringSSL all verify either curve.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import ssl
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from plugwire.core.errors import ConfigError

# cryptography's EC primitives are imported where they are used (a plugin without TLS
# never loads them); cryptography.x509 is not needed at all (see generate_cert).

__all__ = [
    "PLUGIN_CURVE",
    "PRIVATE_LEG_CURVE",
    "Certificate",
    "TLSConfig",
    "adopt_certs",
    "der_to_pem",
    "generate_cert",
    "load_crypto",
    "prepare_certs",
]

SERVER_NAME = "localhost"

PLUGIN_CURVE = "P-256"
"""The curve of the certificate a plugin's AutoMTLS makes and announces (see above)."""

PRIVATE_LEG_CURVE = "P-256"
"""The curve of the private leg behind the TLS front end (:mod:`plugwire.grpc._tlsproxy`):
one grpcio's BoringSSL speaks (it has no P-521)."""

_prepared: dict[tuple[str, str], list[Certificate]] = {}


def prepare_certs(*wanted: tuple[str, str]) -> None:
    """Make the certificates a coming launch will ask :func:`generate_cert` for,
    ahead of time: ``wanted`` holds one ``(host, curve)`` per certificate.

    Each prepared certificate is handed out once (the next matching
    :func:`generate_cert` call takes it instead of generating), and calling this
    drops whatever was prepared before, first: a fork server calls it after each
    fork, so every forked launch holds certificates no other launch has (the one
    before it took its own copies; this process's copies are discarded).
    """
    _prepared.clear()
    for host, curve in wanted:
        _prepared.setdefault((host, curve), []).append(_generate(host, curve))


def adopt_certs(host: str, curve: str, certs: Sequence[Certificate]) -> None:
    """Hand out ``certs``, made elsewhere for ``(host, curve)``, the way
    :func:`prepare_certs` hands out its own: the next matching :func:`generate_cert`
    calls take them, once each. Drops whatever was prepared before, first.

    A provider launch that imports has them made by a helper process it forked before
    importing, on another core (see :mod:`plugwire.grpc.terraform._launch`)."""
    _prepared.clear()
    _prepared[(host, curve)] = list(certs)


@attrs.frozen
class Certificate:
    """A certificate and its key: ``cert_pem``, ``key_pem`` and ``cert_der``."""

    cert_pem: bytes
    key_pem: bytes
    cert_der: bytes


def generate_cert(host: str = SERVER_NAME, *, curve: str = "P-521") -> Certificate:
    """A fresh self-signed ECDSA certificate valid ~30 years, like go-plugin's: P-521
    by default, as go-plugin's host makes; ``curve="P-256"`` for a plugin's own
    (:data:`PLUGIN_CURVE`) and for the private leg behind the TLS front end, which
    grpcio's BoringSSL must speak.

    The certificate is DER-encoded here with the fields go-plugin's ``generateCert``
    sets; the key pair and the signature come from ``cryptography``'s EC primitives.
    A plugin launch thus never imports ``cryptography.x509`` (~25 ms here). A
    certificate made ahead by :func:`prepare_certs` is returned if there is one.
    """
    if curve not in _CURVES:
        raise ConfigError("unknown curve", step="tls", expected=str(list(_CURVES)), seen=curve)
    ready = _prepared.get((host, curve))
    if ready:
        return ready.pop()
    return _generate(host, curve)


def load_crypto() -> None:
    """Import what :func:`generate_cert` needs from ``cryptography`` (its EC
    primitives, ~13 ms here; imported on first use, so a plugin without TLS never
    loads them). A fork server calls it once, so that its children do not each import
    them (see :mod:`plugwire.grpc.terraform._launch`)."""
    import cryptography.exceptions
    import cryptography.hazmat.primitives.asymmetric.ec
    import cryptography.hazmat.primitives.hashes  # noqa: F401


def _generate(host: str, curve: str) -> Certificate:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    curve_oid, size, _sig, _hash = _CURVES[curve]
    pkey = ec.generate_private_key(ec.SECP521R1() if curve == "P-521" else ec.SECP256R1())
    numbers = pkey.public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")
    spki = _seq(_seq(_oid(_OID_EC_PUBLIC_KEY), _oid(curve_oid)), _bits(point))

    def sign(data: bytes, digest: str) -> bytes:
        algorithm = hashes.SHA512() if digest == "sha512" else hashes.SHA256()
        try:
            return pkey.sign(data, _ecdsa(ec, algorithm))
        except (AttributeError, TypeError, UnsupportedAlgorithm):  # changed: the public way
            return pkey.sign(data, ec.ECDSA(algorithm))

    def private_key() -> bytes:  # SEC 1 ECPrivateKey, as OpenSSL's i2d_PrivateKey
        private = pkey.private_numbers().private_value.to_bytes(size, "big")
        return _seq(
            _int(1), _tlv(0x04, private), _tlv(0xA0, _oid(curve_oid)), _tlv(0xA1, _bits(point))
        )

    return _certificate(host, curve, spki, sign, private_key)


def _ecdsa(ec: Any, algorithm: Any) -> Any:
    """``ec.ECDSA(algorithm)`` without its constructor, which imports cryptography's
    whole OpenSSL backend (~8 ms of every plugin launch here) only to check for
    deterministic signing, not asked for here. Same attributes as the constructor
    sets; :func:`generate_cert` falls back to ``ec.ECDSA`` if signing rejects it."""
    signature = ec.ECDSA.__new__(ec.ECDSA)
    signature._algorithm = algorithm
    signature._deterministic_signing = False
    return signature


def _certificate(
    host: str,
    curve: str,
    public_key_info: bytes,
    sign: Callable[[bytes, str], bytes],
    private_key: Callable[[], bytes],
) -> Certificate:
    """The self-signed certificate for ``public_key_info`` (DER SubjectPublicKeyInfo)."""
    _curve_oid, _size, sig_oid, digest = _CURVES[curve]
    now = _dt.datetime.now(_dt.UTC)
    name = _seq(_name_entry(_OID_ORGANIZATION, "HashiCorp"), _name_entry(_OID_COMMON_NAME, host))
    signature_algorithm = _seq(_oid(sig_oid))
    tbs = _seq(
        _tlv(0xA0, _int(2)),  # [0] version v3
        _int(secrets.randbits(127) + 1),
        signature_algorithm,
        name,  # issuer
        _seq(
            _time(now - _dt.timedelta(seconds=30)),
            _time(now + _dt.timedelta(hours=262980)),
        ),
        name,  # subject
        public_key_info,
        _tlv(
            0xA3,  # [3] extensions
            _seq(
                _extension(_OID_BASIC_CONSTRAINTS, _seq(_tlv(0x01, b"\xff")), critical=True),
                # digitalSignature, keyEncipherment, keyAgreement, keyCertSign
                _extension(_OID_KEY_USAGE, _tlv(0x03, b"\x02\xac"), critical=True),
                _extension(
                    _OID_EXT_KEY_USAGE, _seq(_oid(_OID_CLIENT_AUTH), _oid(_OID_SERVER_AUTH))
                ),
                _extension(_OID_SUBJECT_ALT_NAME, _seq(_tlv(0x82, host.encode("ascii")))),
            ),
        ),
    )
    cert_der = _seq(tbs, signature_algorithm, _bits(sign(tbs, digest)))
    return Certificate(
        cert_pem=_pem("CERTIFICATE", cert_der),
        key_pem=_pem("EC PRIVATE KEY", private_key()),
        cert_der=cert_der,
    )


# curve -> (named-curve OID, coordinate bytes, signature algorithm OID, hash)
_CURVES = {
    "P-521": ("1.3.132.0.35", 66, "1.2.840.10045.4.3.4", "sha512"),
    "P-256": ("1.2.840.10045.3.1.7", 32, "1.2.840.10045.4.3.2", "sha256"),
}
_OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_OID_ORGANIZATION = "2.5.4.10"
_OID_COMMON_NAME = "2.5.4.3"
_OID_BASIC_CONSTRAINTS = "2.5.29.19"
_OID_KEY_USAGE = "2.5.29.15"
_OID_EXT_KEY_USAGE = "2.5.29.37"
_OID_SUBJECT_ALT_NAME = "2.5.29.17"
_OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
_OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"


def _tlv(tag: int, value: bytes) -> bytes:
    """One DER element: tag, definite length, value."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + value


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    """A non-negative DER INTEGER (a leading zero byte keeps it positive)."""
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _bits(data: bytes) -> bytes:
    """A BIT STRING of whole bytes."""
    return _tlv(0x03, b"\x00" + data)


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray((40 * arcs[0] + arcs[1],))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _name_entry(oid: str, value: str) -> bytes:
    """One relative distinguished name: SET { SEQUENCE { type, UTF8String } }."""
    return _tlv(0x31, _seq(_oid(oid), _tlv(0x0C, value.encode("utf-8"))))


def _time(when: _dt.datetime) -> bytes:
    """RFC 5280 validity time: UTCTime through 2049, GeneralizedTime from 2050."""
    if when.year < 2050:
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return _tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def _extension(oid: str, value: bytes, *, critical: bool = False) -> bytes:
    flag = _tlv(0x01, b"\xff") if critical else b""
    return _seq(_oid(oid), flag, _tlv(0x04, value))


def _pem(label: str, der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"".join(
        [
            f"-----BEGIN {label}-----\n".encode(),
            *(line + b"\n" for line in lines),
            f"-----END {label}-----\n".encode(),
        ]
    )


def der_to_pem(der: bytes) -> bytes:
    """A DER certificate as PEM; raises :class:`ConfigError` when it does not parse."""
    _parse_certificates(der, message="cannot parse certificate", expected="a DER X.509 certificate")
    return _pem("CERTIFICATE", der)


def _parse_certificates(data: bytes, *, message: str, expected: str) -> None:
    """Parse ``data`` (PEM text when ``expected`` is "PEM", else DER) with OpenSSL
    through ``ssl``: at least one certificate, each well formed. (``cryptography.x509``
    would cost every plugin launch ~50 ms of imports.)"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cadata=data.decode("ascii") if expected == "PEM" else data)
    except (ssl.SSLError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(message, step="tls", expected=expected, seen=str(exc)) from None
    if not ctx.cert_store_stats()["x509"]:
        raise ConfigError(message, step="tls", expected=expected, seen="no certificate")


def check_pem(pem: bytes, *, what: str) -> bytes:
    """Return ``pem`` if it holds at least one certificate, else raise :class:`ConfigError`."""
    _parse_certificates(pem, message=f"{what} is not a PEM certificate", expected="PEM")
    return pem


@attrs.frozen
class TLSConfig:
    """TLS for one side of a go-plugin connection (mutual by default).

    ``cert_pem``/``key_pem`` identify this side; ``peer_roots_pem`` is what the peer's
    certificate must chain to; ``server_name`` is checked against the server's
    certificate; ``require_client_cert`` makes a server demand and verify client
    certificates. Used for the plugin's main server, the host's connection and both
    ends of broker connections; the TLS itself is done by Python's ``ssl`` (see
    :mod:`plugwire.grpc._tlsproxy` for why not grpcio's).
    """

    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    peer_roots_pem: bytes | None = None
    server_name: str = SERVER_NAME
    require_client_cert: bool = True

    @classmethod
    def mutual(cls, own: Certificate, peer_pem: bytes) -> TLSConfig:
        """The AutoMTLS config: present ``own``, trust exactly ``peer_pem``."""
        return cls(cert_pem=own.cert_pem, key_pem=own.key_pem, peer_roots_pem=peer_pem)

    def server_context(self) -> ssl.SSLContext:
        """An ``ssl`` server context presenting this side's certificate.

        TLS >= 1.2, ALPN ``h2``; with ``peer_roots_pem`` and ``require_client_cert``
        the client must present a certificate that chains to it.
        """
        if self.cert_pem is None or self.key_pem is None:
            raise ConfigError(
                "a TLS server needs a certificate and key",
                step="tls",
                expected="cert_pem and key_pem",
            )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._common(ctx)
        if self.peer_roots_pem is not None:
            ctx.load_verify_locations(cadata=self.peer_roots_pem.decode("ascii"))
            if self.require_client_cert:
                ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl`` client context verifying the server for :attr:`server_name`."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._common(ctx)
        if self.peer_roots_pem is not None:
            ctx.load_verify_locations(cadata=self.peer_roots_pem.decode("ascii"))
        else:
            ctx.load_default_certs()
        return ctx

    def _common(self, ctx: ssl.SSLContext) -> None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["h2"])
        if self.cert_pem is not None and self.key_pem is not None:
            _load_chain(ctx, self.cert_pem, self.key_pem)


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """``ctx.load_cert_chain`` from PEM bytes. ``ssl`` loads chains from paths only:
    on Linux two anonymous in-memory files (``memfd_create``, read back through
    ``/proc/self/fd``), so the key never reaches a file system; elsewhere a private
    short-lived directory."""
    try:
        if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            _load_chain_memfd(ctx, cert_pem, key_pem)
        else:
            _load_chain_tempdir(ctx, cert_pem, key_pem)
    except ssl.SSLError as exc:
        raise ConfigError(
            "cannot load TLS certificate/key",
            step="tls",
            expected="matching PEM certificate and key",
            seen=str(exc),
        ) from None


def _load_chain_memfd(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    fds: list[int] = []
    try:
        for name, data in (("plugwire-cert", cert_pem), ("plugwire-key", key_pem)):
            fd = os.memfd_create(name, os.MFD_CLOEXEC)
            fds.append(fd)
            os.write(fd, data)
        cert_fd, key_fd = fds
        ctx.load_cert_chain(f"/proc/self/fd/{cert_fd}", f"/proc/self/fd/{key_fd}")
    finally:
        for fd in fds:
            os.close(fd)


def _load_chain_tempdir(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="plugwire-cert-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        ctx.load_cert_chain(cert_path, key_path)
