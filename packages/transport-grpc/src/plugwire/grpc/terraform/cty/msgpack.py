"""cty values <-> msgpack, byte-compatible with go-cty's ``cty/msgpack``.

What tfplugin5/6 ``DynamicValue.msgpack`` carries. Encoding (go-cty ``Marshal``):

* null -> nil; unknown -> fixext1 type 0 (``d4 00 00``), or ext type 12 holding a map
  of refinements ``{1: false (not null), 2: string prefix, 3/4: [number, inclusive]
  lower/upper, 5/6: collection length lower/upper}`` written in that key order;
* numbers: an int (compact form) when integral and within int64, a float64 when
  non-integral and exactly a float64, ±Inf as float64, otherwise the decimal string;
* objects as maps in sorted attribute order, maps in sorted key order, sets in
  go-cty's set order (see ``values.normalize_set``), tuples/lists as arrays;
* a value in a ``Dynamic`` position: ``[type JSON as bin, value]``.

Marks are stripped. Decoding is strict and path-aware: any malformed, truncated or
hostile input raises CtyError naming the attribute path; nothing is preallocated
from declared lengths and nesting is bounded (``MAX_DEPTH``). As in go-cty, bytes
after the top-level value are ignored.
"""

from __future__ import annotations

import decimal
import math
import struct
from typing import Any

import msgpack as _msgpack

from ._text import Num, number_text
from .path import AttributePath, CtyError
from .typejson import type_from_json, type_to_json
from .types import Bool, DynamicPseudoType, List, Map, Number, Object, Set, String, Tuple, Type
from .values import (
    MAX_DEPTH,
    UNKNOWN,
    DynamicValue,
    Unknown,
    _check_refinements,
    canonical,
    normalize_set,
    number_from_float,
    parse_number,
)

__all__ = ["decode_msgpack", "encode_msgpack"]

_UNKNOWN_EXT = _msgpack.ExtType(0, b"\x00")
_REFINED_EXT = 12
_MAX_REFINEMENTS = 1024
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


# --- encode --------------------------------------------------------------------------


def encode_msgpack(value: Any, type: Type) -> bytes:  # noqa: A002
    """``value`` (conformed to ``type``, marks stripped) as go-cty's msgpack."""
    path = AttributePath()
    canon = canonical(value, type, path, 0, strip_marks=True)
    tree = _tree(canon, type, path)
    try:
        return bytes(_msgpack.packb(tree, use_bin_type=True))
    except (ValueError, OverflowError) as exc:
        raise CtyError(path, f"cannot encode as msgpack: {exc}") from None


def _wire_number(n: Num) -> int | float | str:
    if isinstance(n, int):
        return n if _INT64_MIN <= n <= _INT64_MAX else str(n)
    if isinstance(n, float):
        if math.isinf(n):
            return n
        if n == int(n):
            i = int(n)
            return i if _INT64_MIN <= i <= _INT64_MAX else number_text(n)
        return n
    if n.is_infinite():
        return math.inf if n > 0 else -math.inf
    if n == n.to_integral_value():
        i = int(n)
        return i if _INT64_MIN <= i <= _INT64_MAX else number_text(n)
    f = float(n)
    if math.isfinite(f) and decimal.Decimal(f) == n:
        return f
    return number_text(n)


def _refinements(u: Unknown, ty: Type) -> bytes:
    entries: dict[int, Any] = {}
    if u.not_null:
        entries[1] = False
    if ty == Number:
        if u.number_lower is not None:
            entries[3] = [_wire_number(u.number_lower), u.number_lower_inclusive]
        if u.number_upper is not None:
            entries[4] = [_wire_number(u.number_upper), u.number_upper_inclusive]
    elif ty == String:
        if u.string_prefix:
            entries[2] = u.string_prefix
    elif ty.is_collection:
        if u.length_lower:
            entries[5] = u.length_lower
        if u.length_upper is not None:
            entries[6] = u.length_upper
    if not entries:
        return b""
    return bytes(_msgpack.packb(entries, use_bin_type=True))


def _tree(value: Any, ty: Type, path: AttributePath) -> Any:
    """The msgpack-ready tree of a canonical value."""
    if isinstance(ty, DynamicPseudoType):
        if isinstance(value, DynamicValue):
            return [type_to_json(value.type), _tree(value.value, value.type, path)]
        if isinstance(value, Unknown):
            return _UNKNOWN_EXT
        return None
    if isinstance(value, Unknown):
        payload = _refinements(value, ty)
        return _msgpack.ExtType(_REFINED_EXT, payload) if payload else _UNKNOWN_EXT
    if value is None:
        return None
    if ty == String or ty == Bool:
        return value
    if ty == Number:
        return _wire_number(value)
    if isinstance(ty, List | Set):
        return [_tree(v, ty.element, path.index(i)) for i, v in enumerate(value)]
    if isinstance(ty, Tuple):
        return [
            _tree(v, et, path.index(i))
            for i, (v, et) in enumerate(zip(value, ty.elements, strict=True))
        ]
    if isinstance(ty, Map):
        return {k: _tree(value[k], ty.element, path.key(k)) for k in sorted(value)}
    if isinstance(ty, Object):
        return {name: _tree(value[name], aty, path.attr(name)) for name, aty in ty.attributes.items()}
    raise CtyError(path, f"unsupported type {ty!r}")


# --- decode --------------------------------------------------------------------------

_EXT_FIXED = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_EXT_VAR = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_STR_CODES = frozenset([*range(0xA0, 0xC0), 0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6])
_INT_CODES = frozenset(
    [*range(0x00, 0x80), *range(0xE0, 0x100), 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3]
)
_FLOAT_CODES = frozenset([0xCA, 0xCB])
_ARRAY_CODES = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
_MAP_CODES = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
_BOOL_CODES = frozenset([0xC2, 0xC3])
_NIL = 0xC0


class _Reader:
    __slots__ = ("data", "u")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.u = _msgpack.Unpacker(
            raw=True,
            strict_map_key=False,
            max_buffer_size=max(len(data), 1),
            use_list=True,
        )
        self.u.feed(data)

    def peek(self, path: AttributePath) -> int:
        pos = self.u.tell()
        if pos >= len(self.data):
            raise CtyError(path, f"msgpack data ends at byte {pos} where a value is required")
        return self.data[pos]

    def call(self, path: AttributePath, what: str, fn: Any) -> Any:
        pos = self.u.tell()
        try:
            return fn()
        except _msgpack.OutOfData:
            raise CtyError(path, f"msgpack data truncated in {what} at byte {pos}") from None
        except (ValueError, TypeError, _msgpack.UnpackException) as exc:
            raise CtyError(path, f"malformed msgpack {what} at byte {pos}: {exc}") from None

    def ext_len(self, code: int, path: AttributePath) -> int:
        pos = self.u.tell()
        if code in _EXT_FIXED:
            return _EXT_FIXED[code]
        size = _EXT_VAR[code]
        raw = self.data[pos + 1 : pos + 1 + size]
        if len(raw) < size:
            raise CtyError(path, f"msgpack data truncated in an extension header at byte {pos}")
        return int.from_bytes(raw, "big")


def decode_msgpack(data: bytes | bytearray | memoryview, type: Type) -> Any:  # noqa: A002
    """A value of ``type`` from go-cty's msgpack; malformed input raises CtyError."""
    if not isinstance(type, Type):
        raise TypeError(f"type must be a cty Type, not {type!r}")
    reader = _Reader(bytes(data))
    return _decode(reader, type, AttributePath(), 0)


def _decode(r: _Reader, ty: Type, path: AttributePath, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CtyError(path, f"value nesting deeper than {MAX_DEPTH}")
    code = r.peek(path)
    if code in _EXT_FIXED or code in _EXT_VAR:
        return _decode_unknown(r, code, ty, path)
    if isinstance(ty, DynamicPseudoType):
        return _decode_dynamic(r, code, path, depth)
    if code == _NIL:
        r.call(path, "nil", r.u.skip)
        return None
    if ty == Bool:
        if code not in _BOOL_CODES:
            raise CtyError(path, "bool is required")
        return r.call(path, "bool", r.u.unpack)
    if ty == Number:
        return _decode_number(r, code, path)
    if ty == String:
        if code not in _STR_CODES:
            raise CtyError(path, "string is required")
        return _utf8(r.call(path, "string", r.u.unpack), path)
    if isinstance(ty, List | Set | Tuple):
        if code not in _ARRAY_CODES:
            raise CtyError(path, f"{'a tuple' if isinstance(ty, Tuple) else 'a ' + ty.friendly_name().split()[0]} is required")
        n = r.call(path, "array header", r.u.read_array_header)
        if isinstance(ty, Tuple):
            if n != len(ty.elements):
                raise CtyError(path, f"a tuple of length {len(ty.elements)} is required ({n} given)")
            return [_decode(r, et, path.index(i), depth + 1) for i, et in enumerate(ty.elements)]
        out = []
        for i in range(n):
            out.append(_decode(r, ty.element, path.index(i), depth + 1))
        if isinstance(ty, Set):
            return normalize_set(out, ty.element)
        return out
    if isinstance(ty, Map | Object):
        if code not in _MAP_CODES:
            raise CtyError(path, f"{'an object' if isinstance(ty, Object) else 'a map'} is required")
        n = r.call(path, "map header", r.u.read_map_header)
        if isinstance(ty, Object) and n != len(ty.attributes):
            raise CtyError(
                path, f"an object with {len(ty.attributes)} attributes is required ({n} given)"
            )
        result: dict[str, Any] = {}
        for _ in range(n):
            if r.peek(path) not in _STR_CODES:
                raise CtyError(path, "all keys must be strings")
            key = _utf8(r.call(path, "map key", r.u.unpack), path)
            if isinstance(ty, Map):
                result[key] = _decode(r, ty.element, path.key(key), depth + 1)
                continue
            aty = ty.attributes.get(key)
            if aty is None:
                raise CtyError(path.attr(key), "unsupported attribute")
            if key in result:
                raise CtyError(path.attr(key), "duplicate attribute")
            result[key] = _decode(r, aty, path.attr(key), depth + 1)
        if isinstance(ty, Map):
            return dict(sorted(result.items()))
        return {name: result[name] for name in ty.attributes}
    raise CtyError(path, f"unsupported type {ty!r}")


def _utf8(raw: bytes, path: AttributePath) -> str:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise CtyError(path, "string is not valid UTF-8") from None
    from .values import _nfc

    return _nfc(text)


def _decode_number(r: _Reader, code: int, path: AttributePath) -> Num:
    if code in _INT_CODES:
        return int(r.call(path, "number", r.u.unpack))
    if code in _FLOAT_CODES:
        return number_from_float(float(r.call(path, "number", r.u.unpack)), path)
    if code in _STR_CODES:
        raw = r.call(path, "number", r.u.unpack)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise CtyError(path, "number is required") from None
        return parse_number(text, path)
    raise CtyError(path, "number is required")


def _decode_dynamic(r: _Reader, code: int, path: AttributePath, depth: int) -> Any:
    if code == _NIL:
        r.call(path, "nil", r.u.skip)
        return None
    if code not in _ARRAY_CODES:
        raise CtyError(path, "a dynamic value must be a [type, value] array")
    n = r.call(path, "array header", r.u.read_array_header)
    if n != 2:
        raise CtyError(path, "dynamic value array must have exactly two elements")
    if r.peek(path) not in _STR_CODES:
        raise CtyError(path, "a dynamic value's type must be JSON bytes")
    raw = r.call(path, "dynamic type", r.u.unpack)
    ty = type_from_json(raw, path)
    value = _decode(r, ty, path, depth + 1)
    if isinstance(ty, DynamicPseudoType):
        return value
    return DynamicValue(ty, value)


def _decode_unknown(r: _Reader, code: int, ty: Type, path: AttributePath) -> Any:
    # The extension is read by hand (msgpack-python would interpret type -1 as a
    # timestamp); go-cty treats every extension as an unknown value.
    pos = r.u.tell()
    length = r.ext_len(code, path)
    start = pos + 1 + _EXT_VAR.get(code, 0)
    type_byte = r.data[start : start + 1]
    if not type_byte:
        raise CtyError(path, f"msgpack data truncated in an extension header at byte {pos}")
    ext_code = struct.unpack("b", type_byte)[0]
    if length > 1 and ext_code != _REFINED_EXT:
        raise CtyError(path, f"unsupported extension type 0x{ext_code & 0xFF:02x} with len {length}")
    if length > _MAX_REFINEMENTS:
        raise CtyError(path, "oversize unknown value refinement")
    body = r.data[start + 1 : start + 1 + length]
    if len(body) < length:
        raise CtyError(path, f"msgpack data truncated in an extension body at byte {pos}")
    r.call(path, "extension", r.u.skip)
    if length <= 1 or isinstance(ty, DynamicPseudoType):
        return UNKNOWN
    return _parse_refinements(body, ty, path)


def _parse_refinements(body: bytes, ty: Type, path: AttributePath) -> Any:
    sub = _Reader(body)
    if sub.peek(path) not in _MAP_CODES:
        raise CtyError(path, "failed to decode msgpack extension body: not a map")
    n = sub.call(path, "refinements", sub.u.read_map_header)
    fields: dict[str, Any] = {}
    for _ in range(n):
        if sub.peek(path) not in _INT_CODES:
            raise CtyError(path, "failed to decode msgpack extension body: non-integer key in map")
        key = sub.call(path, "refinement key", sub.u.unpack)
        if key == 1:
            if sub.peek(path) not in _BOOL_CODES:
                raise CtyError(path, "null refinement is not boolean")
            if sub.call(path, "refinement", sub.u.unpack):
                return None  # "definitely null" collapses to null, as in go-cty
            fields["not_null"] = True
        elif key == 2:
            if ty != String:
                raise CtyError(path, "string prefix refinement for non-string type")
            if sub.peek(path) not in _STR_CODES:
                raise CtyError(path, "string prefix refinement is not string")
            prefix = _utf8(sub.call(path, "refinement", sub.u.unpack), path)
            if prefix:
                fields["string_prefix"] = prefix
        elif key in (3, 4):
            if ty != Number:
                raise CtyError(path, "numeric bound refinement for non-number type")
            bound = _decode(sub, Tuple((Number, Bool)), path, 0)
            if not isinstance(bound, list) or any(b is None or isinstance(b, Unknown) for b in bound):
                raise CtyError(path, "number bound refinement must be a [number, bool] array")
            name = "number_lower" if key == 3 else "number_upper"
            fields[name], fields[name + "_inclusive"] = bound[0], bound[1]
        elif key in (5, 6):
            if not ty.is_collection:
                raise CtyError(path, "length bound refinement for non-collection type")
            if sub.peek(path) not in _INT_CODES:
                raise CtyError(path, "length bound refinement must be an integer")
            bound = sub.call(path, "refinement", sub.u.unpack)
            if bound < 0 or bound > _INT64_MAX:
                raise CtyError(path, f"length bound {bound} is out of range")
            if key == 6 and bound == _INT64_MAX:
                continue  # math.MaxInt: no upper bound
            fields["length_lower" if key == 5 else "length_upper"] = bound
        else:
            sub.call(path, "refinement", sub.u.skip)  # unknown keys are ignored (future use)
    try:
        u = Unknown(**fields)
    except (TypeError, ValueError) as exc:
        raise CtyError(path, f"invalid refinement: {exc}") from None
    return _check_refinements(u, ty, path)
