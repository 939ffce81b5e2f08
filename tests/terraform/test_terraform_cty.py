"""plugwire.grpc.terraform.cty on its own: round trips, conform, paths, hostile input.

The byte-level comparison with the real go-cty is in test_terraform_cty_golden.py.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from terraform_cty_support import (  # type: ignore[import-not-found,unused-ignore]
    expected,
    typed_values,
    types,
)

from plugwire.grpc.terraform import cty

pytestmark = pytest.mark.terraform

D = decimal.Decimal
S, N, B = cty.String, cty.Number, cty.Bool
OBJ = cty.Object({"name": S, "size": N, "tags": cty.Map(S)}, optional={"tags"})

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _has_unknown_or_inf(v: Any) -> bool:
    if isinstance(v, cty.Unknown):
        return True
    if isinstance(v, float | D):
        return math.isinf(v)
    if isinstance(v, list):
        return any(_has_unknown_or_inf(x) for x in v)
    if isinstance(v, dict):
        return any(_has_unknown_or_inf(x) for x in v.values())
    if isinstance(v, cty.DynamicValue):
        return _has_unknown_or_inf(v.value)
    return False


# --- round trips ---------------------------------------------------------------------


@_SETTINGS
@given(typed_values())
def test_msgpack_round_trip(tv: tuple[cty.Type, Any]) -> None:
    ty, value = tv
    data = cty.encode_msgpack(value, ty)
    decoded = cty.decode_msgpack(data, ty)
    assert decoded == expected(value, ty)
    assert cty.encode_msgpack(decoded, ty) == data  # decode -> encode is the identity


@_SETTINGS
@given(typed_values(allow_unknown=False))
def test_json_round_trip(tv: tuple[cty.Type, Any]) -> None:
    ty, value = tv
    if _has_unknown_or_inf(cty.conform(value, ty)):
        with pytest.raises(cty.CtyError):
            cty.encode_json(value, ty)
        return
    data = cty.encode_json(value, ty)
    decoded = cty.decode_json(data, ty)
    assert cty.encode_json(decoded, ty) == data
    # JSON and msgpack agree on the value. JSON carries a float as its shortest decimal
    # and reads it back as that decimal (go-cty does the same: 1.00001 read from JSON is
    # not the float64 nearest to it, so its msgpack is the string form).
    assert cty.encode_msgpack(decoded, ty) == cty.encode_msgpack(_floats_as_read(value), ty)


def _floats_as_read(v: Any) -> Any:
    """``v`` with every float replaced by what JSON reads back: its shortest decimal."""
    if isinstance(v, float):
        return D(repr(v)) if v else 0  # -0.0 is written as 0
    if isinstance(v, cty.Marked):
        return cty.Marked(_floats_as_read(v.value), v.marks)
    if isinstance(v, list):
        return [_floats_as_read(x) for x in v]
    if isinstance(v, dict):
        return {k: _floats_as_read(x) for k, x in v.items()}
    if isinstance(v, cty.DynamicValue):
        return cty.DynamicValue(v.type, _floats_as_read(v.value))
    return v


@_SETTINGS
@given(types())
def test_type_json_round_trip(ty: cty.Type) -> None:
    assert cty.type_from_json(cty.type_to_json(ty)) == ty
    assert hash(cty.type_from_json(cty.type_to_json(ty))) == hash(ty)


@_SETTINGS
@given(typed_values())
def test_conform_is_idempotent(tv: tuple[cty.Type, Any]) -> None:
    ty, value = tv
    once = cty.conform(value, ty)
    assert cty.conform(once, ty) == once


# --- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (1, "01"),
        (-1, "ff"),
        (2**63 - 1, "cf7fffffffffffffff"),
        (2**63, "b3" + b"9223372036854775808".hex()),
        (2.5, "cb4004000000000000"),
        (3.0, "03"),
        (D("0.1"), "a3" + b"0.1".hex()),
        (D("0.5"), "cb3fe0000000000000"),
        (D("1E+2"), "64"),
        (float("inf"), "cb7ff0000000000000"),
    ],
)
def test_number_wire_forms(value: Any, wire: str) -> None:
    assert cty.encode_msgpack(value, N).hex() == wire


def test_numbers_decode_without_losing_precision() -> None:
    big = D("3.14159265358979323846264338327950288419716939937510582097494459")
    assert cty.decode_msgpack(cty.encode_msgpack(big, N), N) == big
    assert cty.decode_json(cty.encode_json(big, N), N) == big
    huge = 10**60 + 7
    assert cty.decode_msgpack(cty.encode_msgpack(huge, N), N) == huge
    assert isinstance(cty.decode_msgpack(cty.encode_msgpack(D("5.000"), N), N), int)
    assert cty.decode_json(b"0.1", N) == D("0.1")
    assert cty.decode_json(b"12", N) == 12 and isinstance(cty.decode_json(b"12", N), int)
    assert cty.decode_msgpack(cty.encode_msgpack(0.1, N), N) == 0.1


def test_nan_is_not_a_number() -> None:
    with pytest.raises(cty.CtyError, match="NaN"):
        cty.encode_msgpack(float("nan"), N)
    with pytest.raises(cty.CtyError, match="NaN"):
        cty.decode_msgpack(bytes.fromhex("cb7ff8000000000000"), N)
    with pytest.raises(cty.CtyError, match="infinity"):
        cty.encode_json(float("inf"), N)


# --- conform, marks, paths -----------------------------------------------------------


def test_conform_coerces_like_cty() -> None:
    assert cty.conform("12", N) == 12
    assert cty.conform("1.5", N) == D("1.5")
    assert cty.conform(2.5, S) == "2.5"
    assert cty.conform(True, S) == "true"
    assert cty.conform("1", B) is True and cty.conform("false", B) is False
    assert cty.conform({"name": "x", "size": 1}, OBJ) == {"name": "x", "size": 1, "tags": None}
    assert cty.conform(["b", "a", "b"], cty.Set(S)) == ["a", "b"]
    assert cty.conform([1, 1.0, D("1.00")], cty.Set(N)) == [1]
    assert cty.conform([cty.UNKNOWN, cty.UNKNOWN], cty.Set(S)) == [cty.UNKNOWN, cty.UNKNOWN]
    assert cty.conform("e\u0301", S) == "\u00e9"  # NFC, as cty.StringVal
    assert cty.conform([1, "x"], cty.Dynamic) == cty.DynamicValue(cty.Tuple([N, S]), [1, "x"])
    assert cty.conform(cty.Unknown(not_null=True, number_lower=3, number_upper=3), N) == 3
    assert cty.conform(cty.Unknown(not_null=True, length_upper=0), cty.List(S)) == []
    assert cty.conform(cty.Unknown(not_null=True), cty.Dynamic) == cty.UNKNOWN


@pytest.mark.parametrize(
    ("value", "ty", "path", "message"),
    [
        ({"name": 1, "size": "x"}, OBJ, "size", "a number is required"),
        ({"name": "a", "size": 1, "bogus": 1}, OBJ, "bogus", "unsupported attribute"),
        ({"name": "a", "size": 1, "tags": {"k": ["x"]}}, OBJ, 'tags["k"]', "string required"),
        ([["a"], ["b", 3, [1]]], cty.List(cty.List(S)), "[1][2]", "string required"),
        (["a"], cty.Tuple([S, S]), "", "a tuple of length 2"),
        ("maybe", B, "", "bool required"),
        (cty.Unknown(string_prefix="x"), N, "", "string prefix"),
        (cty.Unknown(length_lower=1), S, "", "length refinements"),
        (cty.Unknown(number_lower=5, number_upper=1), N, "", "above upper bound"),
    ],
)
def test_conform_errors_name_the_path(value: Any, ty: cty.Type, path: str, message: str) -> None:
    with pytest.raises(cty.CtyError) as err:
        cty.conform(value, ty)
    assert str(err.value.path) == path
    assert message in err.value.message
    assert isinstance(err.value, ValueError)


def test_attribute_path_rendering() -> None:
    p = cty.AttributePath().attr("a").attr("b").index(0).key('k"1')
    assert str(p) == 'a.b[0]["k\\"1"]'
    assert p.parent == cty.AttributePath().attr("a").attr("b").index(0)
    assert next(iter(p)) == cty.AttributeName("a") and len(p) == 4
    assert str(cty.AttributePath()) == "" and not cty.AttributePath()
    assert str(cty.CtyError(p, "bad")) == 'a.b[0]["k\\"1"]: bad'


def test_unmark_reports_paths_and_encoders_strip_marks() -> None:
    ty = cty.Object({"pw": S, "list": cty.List(S), "m": cty.Map(S), "set": cty.Set(S)})
    value = {
        "pw": cty.sensitive("hunter2"),
        "list": ["a", cty.Marked("b", {"x"})],
        "m": {"k": cty.sensitive("v")},
        "set": [cty.sensitive("s"), "t"],
    }
    plain, marks = cty.unmark(value, ty)
    assert plain == {"pw": "hunter2", "list": ["a", "b"], "m": {"k": "v"}, "set": ["s", "t"]}
    assert marks == [
        (cty.AttributePath().attr("pw"), frozenset({"sensitive"})),
        (cty.AttributePath().attr("list").index(1), frozenset({"x"})),
        (cty.AttributePath().attr("m").key("k"), frozenset({"sensitive"})),
        (cty.AttributePath().attr("set"), frozenset({"sensitive"})),  # hoisted to the set
    ]
    assert cty.encode_msgpack(value, ty) == cty.encode_msgpack(plain, ty)
    assert cty.encode_json(value, ty) == cty.encode_json(plain, ty)
    kept = cty.conform(value, ty)
    assert kept["pw"] == cty.sensitive("hunter2")


def test_types_are_hashable_values() -> None:
    assert cty.List(S) == cty.List(S) and len({cty.List(S), cty.Set(S), cty.Map(S)}) == 3
    assert len({cty.Object({"a": S}), cty.Object({"a": S}), cty.Object({"a": S}, {"a"})}) == 2
    assert cty.Object({"b": N, "a": S}).attributes == {"a": S, "b": N}
    assert list(cty.Object({"b": N, "a": S}).attributes) == ["a", "b"]
    with pytest.raises(ValueError, match="optional"):
        cty.Object({"a": S}, {"b"})
    with pytest.raises(TypeError):
        cty.List("string")  # type: ignore[arg-type]
    assert cty.Map(cty.List(N)).friendly_name() == "map of list of number"


def test_json_lone_surrogates_become_replacement_characters() -> None:
    assert cty.decode_json(b'"a\\ud800b"', S) == "a\ufffdb"
    assert cty.decode_json(b'"\\ud83d\\ude00"', S) == "\U0001f600"
    assert cty.encode_json("a\ud800", S) == b'"a\\ufffd"'


def test_dynamic_values_carry_their_type() -> None:
    ty = cty.Object({"v": cty.Dynamic})
    value = {"v": cty.DynamicValue(cty.List(N), [1, 2])}
    data = cty.encode_msgpack(value, ty)
    assert cty.decode_msgpack(data, ty) == value
    assert cty.encode_json(value, ty) == b'{"v":{"value":[1,2],"type":["list","number"]}}'
    assert cty.decode_json(cty.encode_json(value, ty), ty) == value
    assert cty.decode_msgpack(cty.encode_msgpack({"v": None}, ty), ty) == {"v": None}


def test_refined_unknowns_round_trip() -> None:
    cases = [
        (S, cty.Unknown(not_null=True, string_prefix="ami-")),
        (N, cty.Unknown(number_lower=D("0.5"), number_lower_inclusive=False, number_upper=2**70)),
        (cty.Set(S), cty.Unknown(length_lower=1, length_upper=3)),
        (OBJ, cty.Unknown(not_null=True)),
    ]
    for ty, u in cases:
        assert cty.decode_msgpack(cty.encode_msgpack(u, ty), ty) == u
    assert cty.encode_msgpack(cty.UNKNOWN, S) == b"\xd4\x00\x00"
    with pytest.raises(cty.CtyError, match="not known"):
        cty.encode_json({"name": cty.UNKNOWN, "size": 1}, OBJ)


# --- hostile input -------------------------------------------------------------------

HOSTILE: list[tuple[str, cty.Type, bytes, str, str]] = [
    ("empty", S, b"", "", "ends at byte 0"),
    ("truncated-str", S, bytes.fromhex("a5616263"), "", "truncated"),
    ("truncated-in-object", OBJ, bytes.fromhex("83a46e616d65a5616263"), "name", "truncated"),
    ("huge-array", cty.List(N), bytes.fromhex("ddffffffff01"), "[1]", "ends at byte 6"),
    ("huge-map", cty.Map(N), bytes.fromhex("dfffffffff"), "", "ends at byte 5"),
    ("huge-str32", S, bytes.fromhex("dbffffffff61"), "", "string"),
    ("huge-ext32", S, bytes.fromhex("c9ffffffff0c"), "", "oversize"),
    ("ext-wrong-type", S, bytes.fromhex("d50501c2"), "", "unsupported extension type 0x05"),
    ("ext-timestamp-type", S, bytes.fromhex("d6ff00000000"), "", "unsupported extension"),
    ("refinement-not-map", S, bytes.fromhex("d50c0102"), "", "not a map"),
    ("refinement-prefix-number", N, bytes.fromhex("c7040c8102a161"), "", "non-string"),
    ("refinement-length-string", S, bytes.fromhex("d50c8105") + b"\x01", "", "non-collection"),
    ("refinement-bad-bounds", cty.List(S), bytes.fromhex("c7050c82050906") + b"\x01", "", "below"),
    ("wrong-type", cty.Object({"a": B}), bytes.fromhex("81a161a3616263"), "a", "bool is required"),
    ("non-string-key", cty.Map(S), bytes.fromhex("8101a0"), "", "keys must be strings"),
    ("invalid-utf8", cty.List(S), bytes.fromhex("91a2c328"), "[0]", "UTF-8"),
    ("bad-number-text", N, bytes.fromhex("a3") + b"1_0", "", "a number is required"),
    ("huge-exponent", N, bytes.fromhex("ab") + b"1e999999999", "", "exponent"),
    ("dynamic-bad-type", cty.Dynamic, bytes.fromhex("92c4057374726e67a0"), "", "invalid type JSON"),
    (
        "missing-attr",
        cty.Object({"a": S, "b": S}),
        bytes.fromhex("82a161a0a161a0"),
        "a",
        "duplicate",
    ),
]


@pytest.mark.parametrize(
    ("name", "ty", "data", "path", "message"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_msgpack_raises_cty_error_naming_the_path(
    name: str, ty: cty.Type, data: bytes, path: str, message: str
) -> None:
    with pytest.raises(cty.CtyError) as err:
        cty.decode_msgpack(data, ty)
    assert str(err.value.path) == path
    assert message in err.value.message


def _nested_type(depth: int) -> cty.Type:
    t: cty.Type = S
    for _ in range(depth):
        t = cty.List(t)
    return t


def test_deep_nesting_is_bounded() -> None:
    deep = _nested_type(cty.MAX_DEPTH + 5)
    data = bytes([0x91] * (cty.MAX_DEPTH + 5)) + b"\xa0"
    with pytest.raises(cty.CtyError, match="deeper than"):
        cty.decode_msgpack(data, deep)
    # a dynamic value that nests dynamic values: [type, [type, [...]]]
    dyn = b'"dynamic"'
    data = (b"\x92\xc4" + bytes([len(dyn)]) + dyn) * 5000 + b"\xc0"
    with pytest.raises(cty.CtyError, match="deeper than"):
        cty.decode_msgpack(data, cty.Dynamic)
    with pytest.raises(cty.CtyError, match=r"nested too deeply|deeper than"):
        cty.type_from_json(b'["list",' * 100_000 + b'"string"' + b"]" * 100_000)
    with pytest.raises(cty.CtyError, match="deeper than"):
        cty.type_from_json(b'["list",' * 100 + b'"string"' + b"]" * 100)
    with pytest.raises(cty.CtyError, match=r"nested too deeply|deeper than"):
        cty.decode_json(b"[" * 100_000 + b"]" * 100_000, _nested_type(3))
    nested: Any = "x"
    for _ in range(cty.MAX_DEPTH + 5):
        nested = [nested]
    with pytest.raises(cty.CtyError, match="deeper than"):
        cty.encode_msgpack(nested, cty.Dynamic)


@pytest.mark.parametrize(
    ("data", "ty", "path", "message"),
    [
        (b'{"name":"a","size":"x"}', OBJ, "size", "a number is required"),
        (b'{"name":"a","nope":1}', OBJ, "", "unsupported attribute 'nope'"),
        (b'{"name":"a","size":1,"tags":{"k":[1]}}', OBJ, 'tags["k"]', "string is required"),
        (b'{"name":"a"', OBJ, "", "invalid JSON"),
        (b"NaN", N, "", "invalid JSON"),
        (b'{"value":1}', cty.Dynamic, "", "missing type"),
        (b'{"type":"string"}', cty.Dynamic, "", "missing value"),
        (b'{"type":"string","value":"x","extra":1}', cty.Dynamic, "", "invalid key"),
        (b'["a","b"]', cty.Tuple([S]), "", "too many tuple elements"),
    ],
)
def test_hostile_json_raises_cty_error_naming_the_path(
    data: bytes, ty: cty.Type, path: str, message: str
) -> None:
    with pytest.raises(cty.CtyError) as err:
        cty.decode_json(data, ty)
    assert str(err.value.path) == path
    assert message in err.value.message


@pytest.mark.parametrize(
    "text",
    [b"", b"string", b'"strng"', b'["list"]', b'["object",{"a":"string"},["b"]]', b'["tuple","x"]',
     b'["map","string","extra"]', b"[1]", b"{}"],
)  # fmt: skip
def test_bad_type_json(text: bytes) -> None:
    with pytest.raises(cty.CtyError):
        cty.type_from_json(text)


@settings(max_examples=500, deadline=None)
@given(types(max_leaves=5), st.binary(max_size=64))
def test_garbage_msgpack_raises_only_cty_error(ty: cty.Type, data: bytes) -> None:
    try:
        cty.decode_msgpack(data, ty)
    except cty.CtyError:
        pass


@settings(max_examples=300, deadline=None)
@given(typed_values(), st.data())
def test_truncated_msgpack_raises_cty_error(tv: tuple[cty.Type, Any], data: st.DataObject) -> None:
    ty, value = tv
    encoded = cty.encode_msgpack(value, ty)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        cty.decode_msgpack(encoded[:cut], ty)
    except cty.CtyError:
        return
    # A prefix can itself be a complete value only where a shorter encoding ends early.
    assert cut > 0
