"""AutoMTLS certificate generation: the DER built by plugwire.grpc.mtls (signed with
cryptography's EC primitives, without cryptography.x509) is the certificate go-plugin
makes, and ssl accepts its key; PEM/DER checks go through ssl."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plugwire.core.errors import ConfigError
from plugwire.grpc import mtls
from plugwire.grpc.mtls import TLSConfig, check_pem, der_to_pem, generate_cert


@pytest.mark.parametrize(
    ("curve", "curve_name", "hash_name"),
    [("P-521", "secp521r1", "sha512"), ("P-256", "secp256r1", "sha256")],
)
def test_generated_certificate_is_go_plugins(curve: str, curve_name: str, hash_name: str) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = generate_cert(curve=curve)
    parsed = x509.load_der_x509_certificate(cert.cert_der)
    assert x509.load_pem_x509_certificate(cert.cert_pem) == parsed
    public = parsed.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == curve_name
    assert parsed.signature_hash_algorithm is not None
    assert parsed.signature_hash_algorithm.name == hash_name
    parsed.verify_directly_issued_by(parsed)  # self-signed, signature valid
    for name in (parsed.subject, parsed.issuer):
        assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
        assert name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "HashiCorp"
    assert parsed.version == x509.Version.v3
    assert 0 < parsed.serial_number < 2**127 + 1
    assert parsed.not_valid_before_utc <= before
    assert parsed.not_valid_after_utc - before > dt.timedelta(days=365 * 29)
    ext = parsed.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length is None
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.digital_signature, usage.value.key_encipherment) == (True, True)
    assert (usage.value.key_agreement, usage.value.key_cert_sign) == (True, True)
    assert not (usage.value.crl_sign or usage.value.data_encipherment)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    # The key is "EC PRIVATE KEY" (SEC 1) and belongs to the certificate.
    assert cert.key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(cert.key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == public.public_numbers()
    # ssl loads the pair (what the TLS front end does) and trusts the certificate.
    TLSConfig.mutual(cert, cert.cert_pem).server_context()
    assert generate_cert(curve=curve).cert_der != cert.cert_der


def test_certificate_for_another_host() -> None:
    parsed = x509.load_der_x509_certificate(generate_cert("plugin.internal").cert_der)
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["plugin.internal"]


def test_unknown_curve_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown curve"):
        generate_cert(curve="P-384")


def test_a_launch_does_not_import_cryptography_x509() -> None:
    """Nor cryptography's OpenSSL backend (``ec.ECDSA()`` imports it to check for
    deterministic signing): the certificate is made on the EC primitives alone."""
    code = (
        "import sys; from plugwire.grpc.mtls import generate_cert, check_pem; "
        "c = generate_cert(); check_pem(c.cert_pem, what='x'); "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('cryptography.x509', 'cryptography.hazmat.backends'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_signing_falls_back_to_the_public_ecdsa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should cryptography's ECDSA change shape, signing takes ``ec.ECDSA()``."""

    def changed(ec: object, algorithm: object) -> object:
        return object()  # not an ECDSA: cryptography's sign raises TypeError

    monkeypatch.setattr(mtls, "_ecdsa", changed)
    for curve in ("P-521", "P-256"):
        parsed = x509.load_der_x509_certificate(generate_cert(curve=curve).cert_der)
        parsed.verify_directly_issued_by(parsed)


def test_pem_checks_without_cryptography_x509() -> None:
    cert = generate_cert()
    assert check_pem(cert.cert_pem, what="PLUGIN_CLIENT_CERT") == cert.cert_pem
    assert der_to_pem(cert.cert_der) == cert.cert_pem
    for bad in (b"", b"not a certificate", cert.cert_pem.replace(b"MII", b"XYZ", 1)):
        with pytest.raises(ConfigError, match="PLUGIN_CLIENT_CERT is not a PEM certificate"):
            check_pem(bad, what="PLUGIN_CLIENT_CERT")
    for bad in (b"", b"\x30\x03\x02\x01\x01", cert.cert_der[:-10]):
        with pytest.raises(ConfigError, match="cannot parse certificate"):
            der_to_pem(bad)


@pytest.mark.parametrize(
    ("dotted", "der"),
    [
        ("1.2.840.10045.2.1", "06072a8648ce3d0201"),
        ("1.3.132.0.35", "06052b81040023"),
        ("2.5.29.37", "0603551d25"),
    ],
)
def test_oid_encoding(dotted: str, der: str) -> None:
    assert mtls._oid(dotted).hex() == der


def test_long_lengths() -> None:
    assert mtls._tlv(0x04, b"x" * 200)[:3] == b"\x04\x81\xc8"
    assert mtls._tlv(0x04, b"x" * 300)[:4] == b"\x04\x82\x01\x2c"
    assert mtls._int(0x80) == b"\x02\x02\x00\x80"


def test_prepared_certificates_are_handed_out_once_each() -> None:
    try:
        mtls.prepare_certs(("localhost", "P-521"), ("localhost", "P-256"), ("localhost", "P-256"))
        first = mtls.generate_cert()
        legs = {mtls.generate_cert(curve="P-256").cert_der for _ in range(2)}
        assert len(legs) == 2  # two prepared, different
        again = mtls.generate_cert()  # none prepared left: a fresh one
        assert again.cert_der != first.cert_der
        assert mtls.generate_cert(curve="P-256").cert_der not in legs
        # preparing again drops what was left: nothing prepared is ever handed out twice
        mtls.prepare_certs(("localhost", "P-521"))
        kept = mtls._prepared[("localhost", "P-521")][0]
        mtls.prepare_certs(("localhost", "P-521"))
        assert mtls.generate_cert().cert_der != kept.cert_der
        assert mtls.generate_cert().cert_der != kept.cert_der
        # a prepared certificate works like a generated one (key matches, P-521)
        mtls.prepare_certs(("localhost", "P-521"))
        cert = mtls.generate_cert()
        parsed = x509.load_der_x509_certificate(cert.cert_der)
        key = serialization.load_pem_private_key(cert.key_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp521r1"
        assert key.public_key().public_numbers() == parsed.public_key().public_numbers()  # type: ignore[union-attr]
    finally:
        mtls._prepared.clear()


def test_a_prepared_private_leg_is_handed_out_once_and_takes_no_launch_certificate() -> None:
    """A fork server prepares the next launch's certificate and its TLS front end's
    private leg (certificate and ssl context); the leg never takes the certificate
    prepared for the launch's own use, and each prepared item goes out once."""
    import ssl

    from plugwire.grpc import _tlsproxy

    try:
        mtls.prepare_certs(("localhost", mtls.PLUGIN_CURVE))
        prepared_own = mtls._prepared[("localhost", mtls.PLUGIN_CURVE)][0]
        _tlsproxy.prepare_private_leg()
        assert mtls._prepared[("localhost", mtls.PLUGIN_CURVE)] == [prepared_own]
        own = mtls.generate_cert(curve=mtls.PLUGIN_CURVE)  # as serve takes it
        assert own.cert_der == prepared_own.cert_der
        leg = _tlsproxy.PrivateLeg.generate()
        assert leg.cert.cert_der != own.cert_der
        assert isinstance(leg.client_context(), ssl.SSLContext)
        assert leg.client_context() is leg.context  # made once, ahead
        again = _tlsproxy.PrivateLeg.generate()  # none prepared left: a fresh one
        assert again.cert.cert_der not in (leg.cert.cert_der, own.cert_der)
    finally:
        mtls._prepared.clear()
        _tlsproxy._prepared_legs.clear()
