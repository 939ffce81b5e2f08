"""Pins and instance IDs, checked against vectors LUCI's cipd/common would produce."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugwire.grpc.cipd import (
    HashAlgo,
    InvalidPinError,
    ObjectRef,
    Pin,
    instance_id_to_object_ref,
    object_ref_to_instance_id,
    validate_package_name,
)


def test_sha1_instance_id_is_the_hex_digest() -> None:
    digest = hashlib.sha1(b"x").hexdigest()
    ref = instance_id_to_object_ref(digest)
    assert ref == ObjectRef(HashAlgo.SHA1, digest)
    assert object_ref_to_instance_id(ref) == digest


def test_sha256_instance_id_is_base64url_of_digest_plus_algo_byte() -> None:
    raw = hashlib.sha256(b"x").digest()
    iid = base64.urlsafe_b64encode(raw + b"\x02").rstrip(b"=").decode()
    ref = instance_id_to_object_ref(iid)
    assert ref == ObjectRef(HashAlgo.SHA256, raw.hex())
    assert ref.instance_id == iid


@given(st.binary(min_size=32, max_size=32))
def test_sha256_round_trip(raw: bytes) -> None:
    ref = ObjectRef(HashAlgo.SHA256, raw.hex())
    assert instance_id_to_object_ref(object_ref_to_instance_id(ref)) == ref


@given(st.binary(min_size=20, max_size=48).filter(lambda b: len(b) % 2 == 0))
def test_unknown_algo_round_trips_any_even_digest(raw: bytes) -> None:
    ref = ObjectRef(7, raw.hex())
    assert instance_id_to_object_ref(object_ref_to_instance_id(ref)) == ref


@pytest.mark.parametrize(
    "iid",
    [
        "",
        "short",
        "A" * 40,  # 40 chars but not lowercase hex
        "g" * 40,
        base64.urlsafe_b64encode(b"\x00" * 32 + b"\x00").rstrip(b"=").decode(),  # algo 0
        base64.urlsafe_b64encode(b"\x00" * 31 + b"\x02").rstrip(b"=").decode(),  # even blob
        base64.urlsafe_b64encode(b"\x00" * 21 + b"\x02").rstrip(b"=").decode(),  # sha256 len
        "!" * 44,
        base64.urlsafe_b64encode(b"\x00" * 32 + b"\x02").decode().rstrip("=") + "=",
    ],
)
def test_bad_instance_ids_are_typed_errors(iid: str) -> None:
    with pytest.raises(InvalidPinError) as info:
        Pin("a/b", iid)
    assert info.value.step == "pin"
    assert info.value.seen is not None


@pytest.mark.parametrize("name", ["a", "infra/tools/cipd", "a-b_c.d/e", "x/.y"])
def test_valid_package_names(name: str) -> None:
    assert validate_package_name(name) == name


@pytest.mark.parametrize("name", ["", "A/b", "a//b", "/a", "a/", "a/../b", "a/./b", "a b"])
def test_invalid_package_names(name: str) -> None:
    with pytest.raises(InvalidPinError, match="invalid package name"):
        Pin(name, "a" * 40)


def test_object_ref_errors() -> None:
    with pytest.raises(InvalidPinError):
        object_ref_to_instance_id(ObjectRef(0, "aa"))
    with pytest.raises(InvalidPinError):
        object_ref_to_instance_id(ObjectRef(HashAlgo.SHA1, "ab"))
    with pytest.raises(InvalidPinError):
        object_ref_to_instance_id(ObjectRef(HashAlgo.SHA256, "XYZ"))


def test_pin_str() -> None:
    assert str(Pin("a/b", "c" * 40)) == "a/b:" + "c" * 40
