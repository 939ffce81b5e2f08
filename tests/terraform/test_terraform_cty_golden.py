"""Golden vectors from the real go-cty: our bytes == go-cty's bytes, both directions.

tests/interop/terraform-cty is a Go program on github.com/zclconf/go-cty (v1.16.3, as
Terraform v1.13.3 builds it). For every case it builds the value with go-cty, and we
check: our msgpack and JSON encodings are byte-identical to go-cty's; we decode
go-cty's bytes back to the value; go-cty decodes our bytes and re-encodes them to the
same bytes. Property tests then do the same for generated types and values.
"""

from __future__ import annotations

import decimal
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from support.gobuild import build_go
from terraform_cty_support import (  # type: ignore[import-not-found,unused-ignore]
    GoCty,
    expected,
    typed_values,
    types,
)

from plugwire.grpc.terraform import cty

pytestmark = [pytest.mark.terraform, pytest.mark.interop]

D = decimal.Decimal
S, N, B = cty.String, cty.Number, cty.Bool
U = cty.Unknown


@pytest.fixture(scope="module")
def go() -> Iterator[GoCty]:
    oracle = GoCty(str(build_go("terraform-cty", ".")))
    yield oracle
    oracle.close()


OBJ = cty.Object({"name": S, "size": N, "tags": cty.Map(S), "on": B}, optional={"tags"})

CASES: list[tuple[str, cty.Type, Any]] = [
    # primitives
    ("string", S, "hello"),
    ("string-empty", S, ""),
    ("string-escapes", S, 'q"b\\s\n\t\r\b\f\x01<>&\u2028\u2029\x7f'),
    ("string-unicode", S, "héllo wörld ☃ 𝄞"),
    ("string-nfd-normalised", S, "e\u0301"),
    ("string-long", S, "x" * 70000),
    ("bool-true", B, True),
    ("bool-false", B, False),
    # numbers
    ("int-0", N, 0),
    ("int-small", N, 7),
    ("int-neg", N, -33),
    ("int-8bit", N, 200),
    ("int-16bit", N, -40000),
    ("int-32bit", N, 4_000_000_000),
    ("int64-max", N, 2**63 - 1),
    ("int64-min", N, -(2**63)),
    ("int-above-int64", N, 2**63),
    ("int-uint64-max", N, 2**64 - 1),
    ("int-huge", N, 10**40 + 1),
    ("float-half", N, 2.5),
    ("float-tenth", N, 0.1),
    ("float-integral", N, 3.0),
    ("float-huge-integral", N, 1e300),
    ("float-tiny", N, 5e-324),
    ("float-neg", N, -1234.5678),
    ("float-inf", N, float("inf")),
    ("float-neg-inf", N, float("-inf")),
    ("decimal-tenth", N, D("0.1")),
    ("decimal-half", N, D("0.5")),
    ("decimal-precise", N, D("3.14159265358979323846264338327950288419716939937510")),
    ("decimal-integral", N, D("12345678901234567890123")),
    ("decimal-trailing-zeros", N, D("1.2500")),
    ("decimal-small", N, D("1E-30")),
    ("decimal-neg", N, D("-0.000001")),
    # null and unknown
    ("null-string", S, None),
    ("null-list", cty.List(S), None),
    ("null-object", OBJ, None),
    ("unknown-string", S, cty.UNKNOWN),
    ("unknown-object", OBJ, cty.UNKNOWN),
    ("unknown-dynamic", cty.Dynamic, cty.UNKNOWN),
    ("unknown-not-null", S, U(not_null=True)),
    ("unknown-not-null-bool", B, U(not_null=True)),
    ("unknown-not-null-object", OBJ, U(not_null=True)),
    ("unknown-prefix", S, U(string_prefix="ami-")),
    ("unknown-prefix-not-null", S, U(not_null=True, string_prefix="arn:aws:iam::")),
    ("unknown-prefix-long", S, U(not_null=True, string_prefix="p" * 300 + "-tail")),
    ("unknown-prefix-long-punct", S, U(string_prefix="a" * 254 + "/bcd")),
    ("unknown-number-lower", N, U(number_lower=0)),
    ("unknown-number-bounds", N, U(not_null=True, number_lower=1, number_upper=10)),
    ("unknown-number-exclusive", N, U(number_lower=D("0.5"), number_lower_inclusive=False,
                                      number_upper=2**70, number_upper_inclusive=False)),  # fmt: skip
    ("unknown-number-upper-float", N, U(number_upper=2.5)),
    ("unknown-number-pinned", N, U(not_null=True, number_lower=5, number_upper=5)),
    ("unknown-length-lower", cty.List(S), U(length_lower=1)),
    ("unknown-length-bounds", cty.Set(N), U(not_null=True, length_lower=2, length_upper=4)),
    ("unknown-length-upper", cty.Map(B), U(length_upper=3)),
    ("unknown-length-pinned-list", cty.List(S), U(not_null=True, length_lower=3, length_upper=3)),
    ("unknown-length-pinned-empty", cty.Map(S), U(not_null=True, length_upper=0)),
    ("unknown-length-pinned-set1", cty.Set(S), U(not_null=True, length_lower=1, length_upper=1)),
    # collections
    ("list", cty.List(S), ["b", "a", "b"]),
    ("list-empty", cty.List(N), []),
    ("list-null-and-unknown", cty.List(S), ["a", None, cty.UNKNOWN, U(string_prefix="x")]),
    ("set-strings", cty.Set(S), ["b", "a", "c", "a"]),
    ("set-numbers", cty.Set(N), [10, -1, 2.5, D("0.1"), 3, 3.0]),
    ("set-bools", cty.Set(B), [True, False]),
    ("set-unknown-null", cty.Set(S), [cty.UNKNOWN, "z", None, "a", U(not_null=True)]),
    ("set-empty", cty.Set(S), []),
    (
        "set-objects",
        cty.Set(cty.Object({"n": N, "s": S})),
        [{"n": 2, "s": "b"}, {"n": 10, "s": "a"}, {"n": 1.5, "s": "é"}, {"n": 1e20, "s": None},
         {"n": 1234567890123, "s": "q"}, {"n": D("0.00001"), "s": "\n"}],
    ),  # fmt: skip
    ("set-of-lists", cty.Set(cty.List(S)), [["b"], ["a", "c"], [], ["a"]]),
    ("set-of-maps", cty.Set(cty.Map(N)), [{"b": 1}, {"a": 2, "c": 3}, {}]),
    ("set-of-sets", cty.Set(cty.Set(S)), [["y", "x"], ["a"]]),
    ("set-of-tuples", cty.Set(cty.Tuple([S, B])), [["x", True], ["a", False]]),
    ("map", cty.Map(N), {"z": 1, "a": 2, "m": D("0.3")}),
    ("map-empty", cty.Map(S), {}),
    ("map-unicode-keys", cty.Map(S), {"é": "1", "z": "2", "<&>": "3"}),
    ("object", OBJ, {"name": "web", "size": 3, "tags": {"env": "prod"}, "on": True}),
    ("object-optional-missing", OBJ, {"name": "web", "size": 3, "on": False}),
    ("object-empty", cty.Object({}), {}),
    ("tuple", cty.Tuple([S, N, B]), ["a", 1, True]),
    ("tuple-empty", cty.Tuple([]), []),
    (
        "nested",
        cty.Object({"blocks": cty.List(cty.Object({"id": S, "ports": cty.Set(N),
                                                   "meta": cty.Map(cty.List(B))}))}),
        {"blocks": [{"id": "a", "ports": [443, 80], "meta": {"x": [True, False]}},
                    {"id": None, "ports": cty.UNKNOWN, "meta": {}}]},
    ),  # fmt: skip
    # dynamic
    ("dynamic-string", cty.Dynamic, cty.DynamicValue(S, "x")),
    ("dynamic-null", cty.Dynamic, None),
    ("dynamic-typed-null", cty.Dynamic, cty.DynamicValue(S, None)),
    ("dynamic-typed-unknown", cty.Dynamic, cty.DynamicValue(N, U(not_null=True, number_lower=0))),
    ("dynamic-object", cty.Dynamic, cty.DynamicValue(OBJ, {"name": "n", "size": 1, "on": True})),
    ("dynamic-implied", cty.Dynamic, {"a": [1, "two", True], "b": {"c": None}}),
    ("dynamic-in-object", cty.Object({"v": cty.Dynamic, "w": S}), {"v": [1, 2], "w": "x"}),
    ("dynamic-list-element", cty.List(cty.Dynamic), [cty.DynamicValue(S, "a"), cty.DynamicValue(S, "b")]),
    ("dynamic-set", cty.Dynamic, cty.DynamicValue(cty.Set(S), ["b", "a"])),
    # marks are stripped by the encoders
    ("marked-leaf", S, cty.sensitive("secret")),
    ("marked-nested", OBJ, {"name": cty.sensitive("n"), "size": cty.Marked(1, {"a", "b"}),
                            "tags": cty.sensitive({"k": cty.sensitive("v")}), "on": True}),  # fmt: skip
    ("marked-set-element", cty.Set(S), [cty.sensitive("b"), "a"]),
    ("marked-unknown", S, cty.sensitive(U(not_null=True))),
]


@pytest.mark.parametrize(("name", "ty", "value"), CASES, ids=[c[0] for c in CASES])
def test_golden_encode_matches_go_cty(go: GoCty, name: str, ty: cty.Type, value: Any) -> None:
    want = go.encode(value, ty)
    assert "error" not in want, want
    ours = cty.encode_msgpack(value, ty)
    assert ours.hex() == want["msgpack"], want["value"]
    if "json" in want:
        assert cty.encode_json(value, ty).decode() == want["json"]
    else:
        with pytest.raises(cty.CtyError) as err:
            cty.encode_json(value, ty)
        assert err.value.message in want["json_error"]
    # go-cty's bytes decode to the value, which re-encodes to the same bytes
    decoded = cty.decode_msgpack(bytes.fromhex(want["msgpack"]), ty)
    assert decoded == expected(value, ty)
    assert cty.encode_msgpack(decoded, ty).hex() == want["msgpack"]
    if "json" in want:
        from_json = cty.decode_json(want["json"].encode(), ty)
        assert cty.encode_json(from_json, ty).decode() == want["json"]


@pytest.mark.parametrize(("name", "ty", "value"), CASES, ids=[c[0] for c in CASES])
def test_golden_go_cty_decodes_ours(go: GoCty, name: str, ty: cty.Type, value: Any) -> None:
    ours = cty.encode_msgpack(value, ty)
    back = go.decode_msgpack(ours, ty)
    assert "error" not in back, back
    assert back["msgpack"] == ours.hex()
    if "json" in back:
        ours_json = cty.encode_json(value, ty)
        again = go.decode_json(ours_json, ty)
        assert "error" not in again, again
        assert again["json"] == ours_json.decode()


TYPES = sorted({c[1] for c in CASES}, key=repr) + [
    cty.Object({"a": S, "b": cty.List(cty.Tuple([N, cty.Dynamic]))}, optional={"a", "b"}),
    cty.Object({'we"ird<key>': S, "é": N}),
    cty.Tuple([]),
]


@pytest.mark.parametrize("ty", TYPES, ids=repr)
def test_golden_type_json(go: GoCty, ty: cty.Type) -> None:
    want = go.type_json(ty)
    assert cty.type_to_json(ty).decode() == want
    assert cty.type_from_json(want.encode()) == ty


def test_golden_type_json_null_tuple(go: GoCty) -> None:
    # go-cty writes ["tuple",null] for a nil element list and reads it back
    assert cty.type_from_json(b'["tuple",null]') == cty.Tuple([])


HOSTILE: list[tuple[str, cty.Type, bytes]] = [
    ("truncated-string", S, bytes.fromhex("a5616263")),
    ("truncated-array", cty.List(S), bytes.fromhex("dd0000ffff")),
    # (a huge declared array/map length makes go-cty allocate it and die of OOM:
    # those cases are only in test_terraform_cty.py)
    ("wrong-type-bool", B, bytes.fromhex("a3616263")),
    ("wrong-type-list", cty.List(S), bytes.fromhex("a3616263")),
    ("ext-wrong-type-long", S, bytes.fromhex("d50501c2")),
    ("ext-oversize", S, bytes.fromhex("c90000ffff0c") + b"\x80" * 10),
    ("refinement-not-map", S, bytes.fromhex("d50c0102")),
    ("refinement-prefix-on-number", N, bytes.fromhex("c7040c8102a161")),
    ("object-unknown-attr", cty.Object({"a": S}), bytes.fromhex("81a162a0")),
    ("tuple-wrong-length", cty.Tuple([S]), bytes.fromhex("92a0a0")),
    ("dynamic-bad-type", cty.Dynamic, bytes.fromhex("92c4057374726e67a0")),
    ("dynamic-one-element", cty.Dynamic, bytes.fromhex("91c4085b226c697374225d")),
    ("number-garbage", N, bytes.fromhex("a3616263")),
    ("empty", S, b""),
]


@pytest.mark.parametrize(("name", "ty", "data"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_golden_both_reject_hostile_msgpack(go: GoCty, name: str, ty: cty.Type, data: bytes) -> None:
    answer = go.decode_msgpack(data, ty)
    assert "error" in answer, answer
    with pytest.raises(cty.CtyError):
        cty.decode_msgpack(data, ty)


_PROPERTY = settings(
    max_examples=int(os.environ.get("CTY_GOLDEN_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_PROPERTY
@given(typed_values())
def test_golden_property_msgpack_matches_go_cty(go: GoCty, tv: tuple[cty.Type, Any]) -> None:
    ty, value = tv
    want = go.encode(value, ty)
    assert "error" not in want, want
    ours = cty.encode_msgpack(value, ty)
    assert ours.hex() == want["msgpack"], want["value"]
    decoded = cty.decode_msgpack(ours, ty)
    assert decoded == expected(value, ty)
    if "json" in want:
        assert cty.encode_json(value, ty).decode() == want["json"]
    back = go.decode_msgpack(ours, ty)
    assert back.get("msgpack") == ours.hex(), back


@_PROPERTY
@given(types())
def test_golden_property_type_json(go: GoCty, ty: cty.Type) -> None:
    want = go.type_json(ty)
    assert cty.type_to_json(ty).decode() == want
    assert cty.type_from_json(json.dumps(json.loads(want)).encode()) == ty
