"""AutoMTLS and TLS material, as go-plugin does it.

Each side makes a throwaway self-signed ECDSA P-521 certificate (CN and DNS name
``localhost``, client and server auth, a CA so the peer can trust it directly).
The host passes its PEM to the plugin in ``PLUGIN_CLIENT_CERT``; the plugin answers
with its DER in the announce line. Each side then uses its one certificate for
both roles and trusts exactly the peer's: the plugin's server requires and verifies
the host's certificate, the host verifies the plugin's for server name
``localhost``. Broker connections reuse the same material.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import ssl
import tempfile

import attrs

from plugwire.core.errors import ConfigError

# cryptography is imported where it is used: a plugin without TLS starts faster.

__all__ = ["Certificate", "TLSConfig", "der_to_pem", "generate_cert"]

SERVER_NAME = "localhost"


@attrs.frozen
class Certificate:
    """A certificate and its key: ``cert_pem``, ``key_pem`` and ``cert_der``."""

    cert_pem: bytes
    key_pem: bytes
    cert_der: bytes


def generate_cert(host: str = SERVER_NAME, *, curve: str = "P-521") -> Certificate:
    """A fresh self-signed ECDSA P-521 certificate valid ~30 years, like go-plugin's
    (``curve="P-256"`` for the private leg behind the TLS front end, which grpcio's
    BoringSSL must speak)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    curves: dict[str, ec.EllipticCurve] = {"P-521": ec.SECP521R1(), "P-256": ec.SECP256R1()}
    if curve not in curves:
        raise ConfigError("unknown curve", step="tls", expected=str(list(curves)), seen=curve)
    key = ec.generate_private_key(curves[curve])
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(now - _dt.timedelta(seconds=30))
        .not_valid_after(now + _dt.timedelta(hours=262980))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA512() if curve == "P-521" else hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return Certificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key_pem,
        cert_der=cert.public_bytes(serialization.Encoding.DER),
    )


def der_to_pem(der: bytes) -> bytes:
    """A DER certificate as PEM; raises :class:`ConfigError` when it does not parse."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ConfigError(
            "cannot parse certificate",
            step="tls",
            expected="a DER X.509 certificate",
            seen=str(exc),
        ) from None
    return cert.public_bytes(serialization.Encoding.PEM)


def check_pem(pem: bytes, *, what: str) -> bytes:
    """Return ``pem`` if it holds at least one certificate, else raise :class:`ConfigError`."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a PEM certificate", step="tls", expected="PEM", seen=str(exc)
        ) from None
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
    # ssl loads certificate chains from files only: use a private, short-lived directory.
    with tempfile.TemporaryDirectory(prefix="plugwire-cert-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ConfigError(
                "cannot load TLS certificate/key",
                step="tls",
                expected="matching PEM certificate and key",
                seen=str(exc),
            ) from None
