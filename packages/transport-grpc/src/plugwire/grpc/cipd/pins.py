"""CIPD pins: a package name plus an instance ID, and its object reference.

An instance ID is the human form of a :class:`ObjectRef`: 40 lowercase hex digits for
a legacy SHA1 digest, otherwise the raw URL-safe base64 (no padding) of the digest
followed by one byte naming the hash algorithm, as LUCI's ``cipd/common`` encodes it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re

import attrs

from .errors import InvalidPinError

__all__ = [
    "HashAlgo",
    "ObjectRef",
    "Pin",
    "instance_id_to_object_ref",
    "object_ref_to_instance_id",
    "validate_package_name",
]

_PACKAGE_RE = re.compile(r"^([a-z0-9_\-.]+/)*[a-z0-9_\-.]+$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")


class HashAlgo(enum.IntEnum):
    """Hash algorithms of CIPD's content-addressed storage."""

    HASH_ALGO_UNSPECIFIED = 0
    SHA1 = 1
    SHA256 = 2


_HEX_LEN = {HashAlgo.SHA1: 40, HashAlgo.SHA256: 64}


@attrs.frozen
class ObjectRef:
    """A content-addressed object: the hash algorithm and the lowercase hex digest."""

    hash_algo: int
    hex_digest: str

    @property
    def instance_id(self) -> str:
        """This reference as an instance ID (see :func:`object_ref_to_instance_id`)."""
        return object_ref_to_instance_id(self)


def validate_package_name(name: str) -> str:
    """Return ``name`` if it is a valid CIPD package name, else raise :class:`InvalidPinError`."""
    if not _PACKAGE_RE.match(name) or any(set(part) == {"."} for part in name.split("/")):
        raise InvalidPinError(
            "invalid package name",
            step="pin",
            expected='slash-separated components matching "[a-z0-9_\\-.]+", not only dots',
            seen=name,
        )
    return name


def _check_hex(digest: str, iid: str) -> None:
    if not digest or len(digest) % 2 or not _HEX_RE.match(digest):
        raise InvalidPinError(
            "invalid instance ID",
            step="pin",
            expected="an even number of lowercase hex digits",
            seen=iid,
        )


def instance_id_to_object_ref(iid: str) -> ObjectRef:
    """Decode an instance ID; raise :class:`InvalidPinError` when it is malformed."""
    if len(iid) == 40:
        _check_hex(iid, iid)
        return ObjectRef(HashAlgo.SHA1, iid)
    if len(iid) < 28:
        raise InvalidPinError(
            "invalid instance ID",
            step="pin",
            expected="40 hex digits (SHA1) or >= 28 chars of URL-safe base64",
            seen=iid,
        )
    try:
        blob = base64.urlsafe_b64decode(iid + "=" * (-len(iid) % 4))
    except (binascii.Error, ValueError):
        blob = b""
    if (
        not blob
        or len(blob) % 2 != 1
        or "=" in iid
        or base64.urlsafe_b64encode(blob).rstrip(b"=").decode() != iid
    ):
        raise InvalidPinError(
            "invalid instance ID",
            step="pin",
            expected="raw URL-safe base64 of a digest plus one hash-algo byte",
            seen=iid,
        )
    algo, digest = blob[-1], blob[:-1]
    if algo == 0:
        raise InvalidPinError("invalid instance ID", step="pin", expected="a hash algo", seen=iid)
    want = _HEX_LEN.get(HashAlgo(algo)) if algo in HashAlgo._value2member_map_ else None
    if want is not None and len(digest) * 2 != want:
        raise InvalidPinError(
            "invalid instance ID",
            step="pin",
            expected=f"{want // 2}-byte digest for {HashAlgo(algo).name}",
            seen=f"{len(digest)} bytes in {iid}",
        )
    return ObjectRef(algo, digest.hex())


def object_ref_to_instance_id(ref: ObjectRef) -> str:
    """Encode ``ref`` as an instance ID; raise :class:`InvalidPinError` when it is malformed."""
    if ref.hash_algo <= 0:
        raise InvalidPinError("invalid object ref", step="pin", expected="a hash algo", seen=ref)
    _check_hex(ref.hex_digest, ref.hex_digest)
    if ref.hash_algo == HashAlgo.SHA1:
        if len(ref.hex_digest) != 40:
            raise InvalidPinError(
                "invalid object ref", step="pin", expected="40 hex digits", seen=ref
            )
        return ref.hex_digest
    blob = bytes.fromhex(ref.hex_digest) + bytes([ref.hash_algo])
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


@attrs.frozen
class Pin:
    """A package instance to deploy: ``Pin("infra/tools/foo", "<instance id>")``.

    Validated on construction: raises :class:`InvalidPinError`.
    """

    package: str = attrs.field()
    instance_id: str = attrs.field()

    @package.validator
    def _check_package(self, _attr: object, value: str) -> None:
        validate_package_name(value)

    @instance_id.validator
    def _check_iid(self, _attr: object, value: str) -> None:
        instance_id_to_object_ref(value)

    @property
    def instance(self) -> ObjectRef:
        return instance_id_to_object_ref(self.instance_id)

    def __str__(self) -> str:
        return f"{self.package}:{self.instance_id}"
