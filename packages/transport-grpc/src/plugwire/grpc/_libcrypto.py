"""ECDSA key pairs and signatures from the libcrypto Python's ``ssl`` module loaded.

AutoMTLS makes a fresh certificate on every plugin launch. ``cryptography`` does it
well but its import (its own OpenSSL build, the Rust bindings, the cffi backend that
``ECDSA()`` pulls in) costs a launch ~30 ms; the process already has OpenSSL 3 mapped
for ``ssl``. This module calls that libcrypto through ``ctypes`` for the three things a
certificate needs: generate an EC key pair (``EVP_PKEY_Q_keygen``), export it
(``i2d_PUBKEY``, ``i2d_PrivateKey``) and sign (``EVP_DigestSign``). The certificate
itself is DER-encoded by :mod:`plugwire.grpc.mtls`.

:func:`available` is False where that libcrypto cannot be found or is older than 3.0
(``/proc/self/maps`` is Linux's; macOS' Python, LibreSSL, a statically linked ``_ssl``):
:mod:`~plugwire.grpc.mtls` then uses ``cryptography``.
"""

from __future__ import annotations

import ctypes
import ssl
from typing import Any

__all__ = ["ECKey", "available"]

_lib: Any = None
_loaded = False


def _find() -> Any:
    if not ssl.OPENSSL_VERSION.startswith("OpenSSL ") or ssl.OPENSSL_VERSION_INFO < (3, 0):
        return None
    with open("/proc/self/maps") as maps:
        paths = {line.split(None, 5)[-1].strip() for line in maps if "libcrypto" in line}
    paths.discard("")
    if len(paths) != 1:
        return None
    lib = ctypes.CDLL(paths.pop())
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    lib.EVP_PKEY_Q_keygen.restype = vp  # variadic: (libctx, propq, "EC", curve name)
    lib.EVP_PKEY_free.argtypes = [vp]
    lib.EVP_PKEY_free.restype = None
    for name in ("i2d_PUBKEY", "i2d_PrivateKey"):
        getattr(lib, name).argtypes = [vp, ctypes.POINTER(vp)]
        getattr(lib, name).restype = ctypes.c_int
    for name in ("EVP_sha256", "EVP_sha512", "EVP_MD_CTX_new"):
        getattr(lib, name).argtypes = []
        getattr(lib, name).restype = vp
    lib.EVP_MD_CTX_free.argtypes = [vp]
    lib.EVP_MD_CTX_free.restype = None
    lib.EVP_DigestSignInit.argtypes = [vp, vp, vp, vp, vp]
    lib.EVP_DigestSignInit.restype = ctypes.c_int
    lib.EVP_DigestSign.argtypes = [vp, vp, ctypes.POINTER(sz), ctypes.c_char_p, sz]
    lib.EVP_DigestSign.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether :class:`ECKey` works here (looked up once)."""
    global _lib, _loaded
    if not _loaded:
        _loaded = True
        try:
            _lib = _find()
        except (OSError, AttributeError, ValueError):
            _lib = None
    return _lib is not None


class ECKey:
    """A fresh EC key pair in libcrypto; :meth:`close` frees it."""

    _CURVES = {"P-521": b"P-521", "P-256": b"P-256"}

    def __init__(self, curve: str) -> None:
        if not available():
            raise OSError("libcrypto is not available through ctypes")
        self._pkey = _lib.EVP_PKEY_Q_keygen(None, None, b"EC", ctypes.c_char_p(self._CURVES[curve]))
        if not self._pkey:
            raise OSError(f"EVP_PKEY_Q_keygen failed for {curve}")

    def close(self) -> None:
        if self._pkey:
            _lib.EVP_PKEY_free(self._pkey)
            self._pkey = None

    def __enter__(self) -> ECKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _i2d(self, function: Any) -> bytes:
        size = function(self._pkey, None)
        if size <= 0:
            raise OSError(f"{function.__name__} failed")
        buf = ctypes.create_string_buffer(size)
        cursor = ctypes.c_void_p(ctypes.addressof(buf))
        if function(self._pkey, ctypes.byref(cursor)) != size:
            raise OSError(f"{function.__name__} failed")
        return buf.raw

    def public_key_info(self) -> bytes:
        """The DER SubjectPublicKeyInfo (ecPublicKey, named curve, uncompressed point)."""
        return self._i2d(_lib.i2d_PUBKEY)

    def private_key(self) -> bytes:
        """The DER SEC 1 ECPrivateKey (with curve and public key): "EC PRIVATE KEY"."""
        return self._i2d(_lib.i2d_PrivateKey)

    def sign(self, data: bytes, digest: str) -> bytes:
        """The DER ECDSA signature of ``data`` hashed with ``digest`` (sha256/sha512)."""
        md = _lib.EVP_sha512() if digest == "sha512" else _lib.EVP_sha256()
        ctx = _lib.EVP_MD_CTX_new()
        if not ctx:
            raise OSError("EVP_MD_CTX_new failed")
        try:
            if _lib.EVP_DigestSignInit(ctx, None, md, None, self._pkey) != 1:
                raise OSError("EVP_DigestSignInit failed")
            size = ctypes.c_size_t(0)
            if _lib.EVP_DigestSign(ctx, None, ctypes.byref(size), data, len(data)) != 1:
                raise OSError("EVP_DigestSign (size) failed")
            buf = ctypes.create_string_buffer(size.value)
            if _lib.EVP_DigestSign(ctx, buf, ctypes.byref(size), data, len(data)) != 1:
                raise OSError("EVP_DigestSign failed")
            return buf.raw[: size.value]
        finally:
            _lib.EVP_MD_CTX_free(ctx)
