"""cty values as plain Python, unknowns with refinements, marks, dynamic values.

A cty value is represented by:

* ``None`` - null (of whatever type the context says);
* ``str`` (NFC-normalised, as cty normalises), ``bool``;
* ``int | float | decimal.Decimal`` for numbers. Decoders return ``int`` when the
  number is integral, ``float`` when the wire carried a non-integral float64 (exact:
  go-cty holds that number at float64 precision) and ``Decimal`` when it carried a
  decimal string; no precision is ever lost;
* ``list`` for list, set and tuple values (a set's list is deduplicated and in go-cty's
  set order, see :func:`conform`), ``dict`` for map and object values;
* :class:`Unknown` (``UNKNOWN`` when unrefined) for values not known until apply;
* :class:`DynamicValue` for a value in a ``Dynamic``-typed position (it carries the
  concrete type); :class:`Marked` wraps a value with marks such as ``"sensitive"``.
"""

from __future__ import annotations

import decimal
import math
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ._text import Num, go_float_string, go_quote, number_text
from .path import AttributeName, AttributePath, CtyError, ElementKeyInt, ElementKeyString
from .types import Bool, Dynamic, DynamicPseudoType, List, Map, Number, Object, Set, String
from .types import Tuple, Type

__all__ = [
    "MAX_DEPTH",
    "UNKNOWN",
    "DynamicValue",
    "Marked",
    "Unknown",
    "conform",
    "implied_type",
    "sensitive",
    "unmark",
]

MAX_DEPTH = 128
"""Deepest value nesting the codecs accept (deeper input raises CtyError)."""

MAX_EXPONENT = 100_000
"""Largest decimal exponent accepted in a number (``1e100000``); larger raises CtyError."""


def _opt_num(value: Num | None) -> Num | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise TypeError(f"a number bound must be a number, not {type(value).__name__}")
    if isinstance(value, float) and math.isnan(value) or (
        isinstance(value, decimal.Decimal) and value.is_nan()
    ):
        raise ValueError("a number bound cannot be NaN")
    return value


def _opt_len(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a length bound must be a non-negative int, not {value!r}")
    return value


@attrs.frozen
class Unknown:
    """A value not known until apply, optionally refined (cty's refinements).

    ``not_null`` (the value will not be null), ``string_prefix`` (strings),
    ``number_lower``/``number_upper`` with ``*_inclusive`` flags (numbers),
    ``length_lower``/``length_upper`` (lists, sets and maps). Refinements that do not
    apply to the type they are encoded as raise CtyError.
    """

    not_null: bool = False
    string_prefix: str | None = None
    number_lower: Num | None = attrs.field(default=None, converter=_opt_num)
    number_lower_inclusive: bool = True
    number_upper: Num | None = attrs.field(default=None, converter=_opt_num)
    number_upper_inclusive: bool = True
    length_lower: int | None = attrs.field(default=None, converter=_opt_len)
    length_upper: int | None = attrs.field(default=None, converter=_opt_len)

    @property
    def refined(self) -> bool:
        """Whether any refinement is set (``UNKNOWN`` is not refined)."""
        return bool(
            self.not_null
            or self.string_prefix
            or self.number_lower is not None
            or self.number_upper is not None
            or self.length_lower
            or self.length_upper is not None
        )


UNKNOWN: Final = Unknown()


@attrs.frozen
class DynamicValue:
    """A value of a ``Dynamic``-typed attribute together with its concrete type."""

    type: Type
    value: Any


def _marks(value: frozenset[str] | Sequence[str] | set[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class Marked:
    """``value`` carrying marks (``"sensitive"``...); encoders strip marks."""

    value: Any
    marks: frozenset[str] = attrs.field(converter=_marks)


def sensitive(value: Any) -> Marked:
    """``Marked(value, {"sensitive"})``."""
    return Marked(value, frozenset({"sensitive"}))


def unmark(value: Any, type: Type | None = None) -> tuple[Any, list[tuple[AttributePath, frozenset[str]]]]:  # noqa: A002
    """``value`` without marks, and where the marks were (pre-order).

    With ``type`` the path steps are exact (object attributes vs map keys); without it
    a dict is taken as an object. A mark inside a set element applies to the set
    (set elements have no path), as in cty.
    """
    found: list[tuple[AttributePath, frozenset[str]]] = []
    plain = _unmark(value, type, AttributePath(), found, 0)
    return plain, found


def _unmark(
    value: Any,
    ty: Type | None,
    path: AttributePath,
    found: list[tuple[AttributePath, frozenset[str]]],
    depth: int,
) -> Any:
    if depth > MAX_DEPTH:
        raise CtyError(path, f"value nesting deeper than {MAX_DEPTH}")
    marks: frozenset[str] = frozenset()
    while isinstance(value, Marked):
        marks |= value.marks
        value = value.value
    if marks:
        found.append((path, marks))
    if isinstance(value, DynamicValue):
        return DynamicValue(value.type, _unmark(value.value, value.type, path, found, depth + 1))
    if isinstance(value, list | tuple):
        if isinstance(ty, Set):
            inner: list[tuple[AttributePath, frozenset[str]]] = []
            out = [_unmark(v, ty.element, path, inner, depth + 1) for v in value]
            hoisted = frozenset().union(*(m for _, m in inner)) if inner else frozenset()
            if hoisted - marks:
                if marks:
                    found.remove((path, marks))
                found.append((path, marks | hoisted))
            return out
        result = []
        for i, v in enumerate(value):
            ety = ty.element if isinstance(ty, List) else (
                ty.elements[i] if isinstance(ty, Tuple) and i < len(ty.elements) else None
            )
            result.append(_unmark(v, ety, path.index(i), found, depth + 1))
        return result
    if isinstance(value, Mapping):
        out_map = {}
        for k, v in value.items():
            if isinstance(ty, Map):
                out_map[k] = _unmark(v, ty.element, path.key(k), found, depth + 1)
            else:
                aty = ty.attributes.get(k) if isinstance(ty, Object) else None
                out_map[k] = _unmark(v, aty, path.attr(k), found, depth + 1)
        return out_map
    return value


# --- numbers -------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z|[+-]?[Ii]nf\Z")
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _from_decimal(d: decimal.Decimal, path: AttributePath) -> Num:
    if d.is_infinite():
        return d
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if abs(d.adjusted()) > MAX_EXPONENT or abs(exp) > MAX_EXPONENT:
        raise CtyError(path, f"number exponent beyond ±{MAX_EXPONENT}")
    if exp >= 0 or d == d.to_integral_value():
        if d.adjusted() <= 4000:
            return int(d)
        return d
    return d


def parse_number(text: str, path: AttributePath) -> Num:
    """A number from its decimal text (go-cty's ParseNumberVal, without 512-bit rounding)."""
    if len(text) > 4 * MAX_EXPONENT or not _NUMBER_RE.match(text):
        raise CtyError(path, "a number is required")
    if text.lstrip("+-").lower() == "inf":
        return -math.inf if text.startswith("-") else math.inf
    return _from_decimal(decimal.Decimal(text), path)


def number_from_float(f: float, path: AttributePath) -> Num:
    if math.isnan(f):
        raise CtyError(path, "NaN is not a number")
    if math.isfinite(f) and f == int(f):
        return int(f)
    return f


def _number(value: Any, path: AttributePath) -> Num:
    if isinstance(value, bool):
        raise CtyError(path, "a number is required, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise CtyError(path, "NaN is not a number")
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            raise CtyError(path, "NaN is not a number")
        if value.is_finite():
            exp = value.as_tuple().exponent
            assert isinstance(exp, int)
            if abs(value.adjusted()) > MAX_EXPONENT or abs(exp) > MAX_EXPONENT:
                raise CtyError(path, f"number exponent beyond ±{MAX_EXPONENT}")
        return value
    if isinstance(value, str):
        return parse_number(value, path)
    raise CtyError(path, f"a number is required, not {type(value).__name__}")


def _nfc(s: str) -> str:
    if s.isascii() or unicodedata.is_normalized("NFC", s):
        return s
    return unicodedata.normalize("NFC", s)


# --- implied types -------------------------------------------------------------------


def implied_type(value: Any, path: AttributePath | None = None) -> Type:
    """The cty type a plain Python value implies (as a literal in HCL would).

    str -> String, bool -> Bool, numbers -> Number, list/tuple -> Tuple of the
    elements' types, dict -> Object of the values' types, ``DynamicValue`` -> its type.
    ``None`` and ``Unknown`` imply ``Dynamic``.
    """
    return _implied(value, path or AttributePath(), 0)


def _implied(value: Any, path: AttributePath, depth: int) -> Type:
    if depth > MAX_DEPTH:
        raise CtyError(path, f"value nesting deeper than {MAX_DEPTH}")
    while isinstance(value, Marked):
        value = value.value
    if value is None or isinstance(value, Unknown):
        return Dynamic
    if isinstance(value, DynamicValue):
        return value.type
    if isinstance(value, bool):
        return Bool
    if isinstance(value, str):
        return String
    if isinstance(value, int | float | decimal.Decimal):
        return Number
    if isinstance(value, list | tuple):
        return Tuple([_implied(v, path.index(i), depth + 1) for i, v in enumerate(value)])
    if isinstance(value, Mapping):
        attrs_: dict[str, Type] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CtyError(path, f"object attribute names must be strings, not {k!r}")
            attrs_[k] = _implied(v, path.attr(k), depth + 1)
        return Object(attrs_)
    raise CtyError(path, f"no cty type for a Python {type(value).__name__}")


# --- conform -------------------------------------------------------------------------


def conform(value: Any, type: Type) -> Any:  # noqa: A002
    """Check ``value`` against ``type`` and return it in canonical form.

    Coerces as cty's conversions do: numeric strings to numbers, numbers and bools to
    strings, ``"true"``/``"false"``/``"1"``/``"0"`` to bools; fills missing object
    attributes with ``None``; deduplicates sets and orders them as go-cty does; turns
    plain values in ``Dynamic`` positions into ``DynamicValue`` with their implied
    type; collapses unknowns whose refinements pin the value (as go-cty does) and
    drops refinements of dynamic unknowns. Marks are kept. Raises CtyError naming
    the path of the first problem.
    """
    return canonical(value, type, AttributePath(), 0, strip_marks=False)


def _check_refinements(u: Unknown, ty: Type, path: AttributePath) -> Any:
    """The canonical unknown for ``u`` at ``ty``: validated, normalised, maybe collapsed."""
    if isinstance(ty, DynamicPseudoType):
        return UNKNOWN
    if u.string_prefix and ty != String:
        raise CtyError(path, f"a string prefix refinement does not apply to {ty.friendly_name()}")
    has_num = u.number_lower is not None or u.number_upper is not None
    if has_num and ty != Number:
        raise CtyError(path, f"number bound refinements do not apply to {ty.friendly_name()}")
    has_len = bool(u.length_lower) or u.length_upper is not None
    if has_len and not ty.is_collection:
        raise CtyError(path, f"length refinements do not apply to {ty.friendly_name()}")
    lower, upper = u.number_lower, u.number_upper
    if lower is not None and lower == -math.inf:
        lower = None
    if upper is not None and upper == math.inf:
        upper = None
    if lower is not None and upper is not None:
        ok = lower < upper if u.number_lower_inclusive != u.number_upper_inclusive else lower <= upper
        if not ok:
            raise CtyError(path, f"number lower bound {lower} is above upper bound {upper}")
    if u.length_lower is not None and u.length_upper is not None and u.length_upper < u.length_lower:
        raise CtyError(
            path, f"length upper bound {u.length_upper} is below lower bound {u.length_lower}"
        )
    _string_prefix = _wire_prefix(_nfc(u.string_prefix)) if u.string_prefix else None
    out = Unknown(
        not_null=u.not_null,
        string_prefix=_string_prefix,
        number_lower=lower,
        number_lower_inclusive=u.number_lower_inclusive if lower is not None else True,
        number_upper=upper,
        number_upper_inclusive=u.number_upper_inclusive if upper is not None else True,
        length_lower=u.length_lower or None,
        length_upper=u.length_upper,
    )
    if out.not_null:
        # go-cty's RefinementBuilder.NewValue collapses a pinned non-null unknown.
        if (
            lower is not None
            and upper is not None
            and out.number_lower_inclusive
            and out.number_upper_inclusive
            and lower == upper
        ):
            return lower
        if ty.is_collection and out.length_upper is not None:
            n = out.length_lower or 0
            if n == out.length_upper:
                if n == 0:
                    return {} if isinstance(ty, Map) else []
                if isinstance(ty, List):
                    return [UNKNOWN] * n
                if isinstance(ty, Set) and n == 1:
                    return [UNKNOWN]
    return out if out.refined else UNKNOWN


_MAX_PREFIX = 256
_MUST_END_CLUSTER = frozenset("-_:;/\\,.(){}[]|?!~ \t@#$%^&*+\"'")


def _wire_prefix(prefix: str) -> str | None:
    """The string prefix refinement as go-cty writes it: above 256 bytes it is cut to
    255 bytes and then to a safe grapheme boundary (ctystrings.SafeKnownPrefix).

    Grapheme clusters are approximated as a character plus its combining marks (and
    CRLF); exact for ASCII.
    """
    raw = prefix.encode()
    if len(raw) <= _MAX_PREFIX:
        return prefix
    cut = unicodedata.normalize("NFC", raw[: _MAX_PREFIX - 1].decode("utf-8", "ignore"))
    end = len(cut)
    while end > 1 and unicodedata.combining(cut[end - 1]):
        end -= 1
    start = end - 1
    if cut[start:] in _MUST_END_CLUSTER and len(cut[start:]) == 1:
        return cut or None
    if cut[start] == "\n" and start > 0 and cut[start - 1] == "\r":
        start -= 1
    return cut[:start] or None


def concrete_type(ty: Type) -> Type:
    """``ty`` without optional-attribute markers: the type a value actually has."""
    if isinstance(ty, Object):
        if not ty.optional and all(t == concrete_type(t) for t in ty.attributes.values()):
            return ty
        return Object({k: concrete_type(v) for k, v in ty.attributes.items()})
    if isinstance(ty, List):
        return List(concrete_type(ty.element))
    if isinstance(ty, Set):
        return Set(concrete_type(ty.element))
    if isinstance(ty, Map):
        return Map(concrete_type(ty.element))
    if isinstance(ty, Tuple):
        return Tuple([concrete_type(t) for t in ty.elements])
    return ty


def canonical(value: Any, ty: Type, path: AttributePath, depth: int, *, strip_marks: bool) -> Any:
    if depth > MAX_DEPTH:
        raise CtyError(path, f"value nesting deeper than {MAX_DEPTH}")
    if isinstance(value, Marked):
        marks: frozenset[str] = frozenset()
        while isinstance(value, Marked):
            marks |= value.marks
            value = value.value
        inner = canonical(value, ty, path, depth + 1, strip_marks=strip_marks)
        return inner if strip_marks or not marks else Marked(inner, marks)
    if value is None:
        return None
    if isinstance(value, Unknown):
        return _check_refinements(value, ty, path)
    if isinstance(ty, DynamicPseudoType):
        if isinstance(value, DynamicValue):
            if not isinstance(value.type, Type):
                raise CtyError(path, f"DynamicValue.type is not a cty type: {value.type!r}")
            if isinstance(value.type, DynamicPseudoType):
                return canonical(value.value, Dynamic, path, depth + 1, strip_marks=strip_marks)
            vty = concrete_type(value.type)
            inner = canonical(value.value, vty, path, depth + 1, strip_marks=strip_marks)
            return DynamicValue(vty, inner)
        vty = _implied(value, path, depth)
        return DynamicValue(vty, canonical(value, vty, path, depth + 1, strip_marks=strip_marks))
    if isinstance(value, DynamicValue):
        # A dynamic value where a concrete type is expected: accept a matching type.
        if value.type != ty and not isinstance(value.type, DynamicPseudoType):
            raise CtyError(
                path, f"{ty.friendly_name()} required, but have {value.type.friendly_name()}"
            )
        return canonical(value.value, ty, path, depth + 1, strip_marks=strip_marks)
    if ty == String:
        if isinstance(value, str):
            return _nfc(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | decimal.Decimal):
            return number_text(_number(value, path))
        raise CtyError(path, f"string required, but have {type(value).__name__}")
    if ty == Number:
        return _number(value, path)
    if ty == Bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value in ("true", "1"):
                return True
            if value in ("false", "0"):
                return False
        raise CtyError(path, f"bool required, but have {value!r}")
    if isinstance(ty, List | Set | Tuple):
        if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(
            value, Sequence | set | frozenset
        ):
            raise CtyError(path, f"{ty.friendly_name()} required, but have {type(value).__name__}")
        if isinstance(ty, Tuple):
            if len(value) != len(ty.elements):
                raise CtyError(path, f"a tuple of length {len(ty.elements)} is required")
            return [
                canonical(v, et, path.index(i), depth + 1, strip_marks=strip_marks)
                for i, (v, et) in enumerate(zip(value, ty.elements, strict=True))
            ]
        if isinstance(ty, List):
            return [
                canonical(v, ty.element, path.index(i), depth + 1, strip_marks=strip_marks)
                for i, v in enumerate(value)
            ]
        elems = [
            canonical(v, ty.element, path, depth + 1, strip_marks=strip_marks) for v in value
        ]
        return normalize_set(elems, ty.element)
    if isinstance(ty, Map):
        if not isinstance(value, Mapping):
            raise CtyError(path, f"{ty.friendly_name()} required, but have {type(value).__name__}")
        out: dict[str, Any] = {}
        for k in sorted(value, key=_key_order(path)):
            kk = _nfc(k)
            out[kk] = canonical(value[k], ty.element, path.key(kk), depth + 1, strip_marks=strip_marks)
        return out
    if isinstance(ty, Object):
        if not isinstance(value, Mapping):
            raise CtyError(path, f"object required, but have {type(value).__name__}")
        for k in value:
            if k not in ty.attributes:
                raise CtyError(path.attr(str(k)), "unsupported attribute")
        return {
            name: canonical(value.get(name), aty, path.attr(name), depth + 1, strip_marks=strip_marks)
            for name, aty in ty.attributes.items()
        }
    raise CtyError(path, f"unsupported type {ty!r}")


def _key_order(path: AttributePath) -> Any:
    def key(k: Any) -> str:
        if not isinstance(k, str):
            raise CtyError(path, f"map keys must be strings, not {k!r}")
        return _nfc(k)

    return key


# --- sets ----------------------------------------------------------------------------


def _unmarked(value: Any) -> Any:
    while isinstance(value, Marked):
        value = value.value
    return value


def eq_key(value: Any, ty: Type) -> Any:
    """A hashable key equal for cty-equal wholly known values; None if any part is unknown."""
    value = _unmarked(value)
    if value is None:
        return ("null",)
    if isinstance(value, Unknown):
        return None
    if isinstance(value, DynamicValue):
        inner = eq_key(value.value, value.type)
        return None if inner is None else ("dyn", value.type, inner)
    if isinstance(value, list):
        keys = []
        for i, v in enumerate(value):
            ety = ty.elements[i] if isinstance(ty, Tuple) else getattr(ty, "element", Dynamic)
            k = eq_key(v, ety)
            if k is None:
                return None
            keys.append(k)
        return ("seq", tuple(keys)) if not isinstance(ty, Set) else ("set", frozenset(keys))
    if isinstance(value, dict):
        items = []
        for name, v in value.items():
            ety = ty.attributes[name] if isinstance(ty, Object) else getattr(ty, "element", Dynamic)
            k = eq_key(v, ety)
            if k is None:
                return None
            items.append((name, k))
        return ("map", frozenset(items))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("str", value)
    return ("num", value)  # int, float and Decimal compare and hash exactly across kinds


def hash_string(value: Any, ty: Type) -> str:
    """go-cty's set hash text (``appendSetHashBytes``) of a canonical value."""
    value = _unmarked(value)
    if isinstance(value, Unknown):
        return "?"
    if value is None:
        return "~"
    if isinstance(value, DynamicValue):
        return hash_string(value.value, value.type)
    if ty == Number:
        return go_float_string(value)
    if ty == Bool:
        return "T" if value else "F"
    if ty == String:
        return go_quote(value)
    if isinstance(ty, Map):
        return "{" + "".join(
            f"{go_quote(k)}:{hash_string(value[k], ty.element)};" for k in sorted(value)
        ) + "}"
    if isinstance(ty, List | Set):
        return "[" + "".join(f"{hash_string(v, ty.element)};" for v in value) + "]"
    if isinstance(ty, Object):
        return "<" + "".join(
            f"{hash_string(value[name], aty)};" for name, aty in ty.attributes.items()
        ) + ">"
    if isinstance(ty, Tuple):
        return "<" + "".join(f"{hash_string(v, et)};" for v, et in zip(value, ty.elements, strict=True)) + ">"
    return "?"


def normalize_set(elems: list[Any], ety: Type) -> list[Any]:
    """Deduplicate (cty equality; unknown-containing elements never merge) and order
    the elements as go-cty's ``Set.Values()`` does: known before unknown before null;
    strings, numbers and bools by value; other types by their set hash text, ties
    broken by the hash bucket (CRC-32) and then insertion order.
    """
    seen: set[Any] = set()
    unique: list[Any] = []
    for e in elems:
        k = eq_key(e, ety)
        if k is not None:
            if k in seen:
                continue
            seen.add(k)
        unique.append(e)
    if len(unique) < 2:
        return unique

    def sort_key(e: Any) -> tuple[Any, ...]:
        v = _unmarked(e)
        if v is None:
            return (2,)
        if isinstance(v, Unknown):
            return (1,)
        if isinstance(v, DynamicValue):
            v = v.value
        h = hash_string(v, ety)
        bucket = zlib.crc32(h.encode("utf-8", "surrogatepass"))
        if ety == String or ety == Bool or ety == Number:
            return (0, v, bucket)
        return (0, h, bucket)

    # Unknowns share one hash bucket ("?"), so insertion order is kept among them.
    return sorted(unique, key=sort_key)
