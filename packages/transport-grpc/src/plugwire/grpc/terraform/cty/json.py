"""cty values <-> JSON, byte-compatible with go-cty's ``cty/json``.

What tfplugin's ``DynamicValue.json`` (state upgrades) and raw state carry. Output is
compact, with objects in sorted attribute order, maps in sorted key order, sets in
go-cty's set order, numbers as big.Float ``Text('f', -1)`` and strings escaped as Go's
encoding/json does. A value in a ``Dynamic`` position is ``{"value":...,"type":...}``.
Unknown values cannot be JSON-encoded (CtyError), nor can infinities.

Decoding follows go-cty's conversions: a JSON string is accepted for a number or
bool, a number or bool for a string; missing object attributes decode as null.
"""

from __future__ import annotations

from typing import Any

from ._text import go_json_string, number_text
from .path import AttributePath, CtyError
from .typejson import JsonNumber, _Pairs, parse_json_tree, type_from_tree, type_to_json
from .types import Bool, DynamicPseudoType, List, Map, Number, Object, Set, String, Tuple, Type
from .values import MAX_DEPTH, DynamicValue, Unknown, _nfc, canonical, normalize_set, parse_number

__all__ = ["decode_json", "encode_json"]


def encode_json(value: Any, type: Type) -> bytes:  # noqa: A002
    """``value`` (conformed to ``type``, marks stripped) as go-cty's JSON."""
    path = AttributePath()
    canon = canonical(value, type, path, 0, strip_marks=True)
    out: list[str] = []
    _write(canon, type, path, out)
    return "".join(out).encode("utf-8", "surrogatepass")


def _write(value: Any, ty: Type, path: AttributePath, out: list[str]) -> None:
    if isinstance(value, Unknown):
        raise CtyError(path, "value is not known")
    if isinstance(ty, DynamicPseudoType):
        if isinstance(value, DynamicValue):
            out.append('{"value":')
            _write(value.value, value.type, path, out)
            out.append(',"type":')
            out.append(type_to_json(value.type).decode())
            out.append("}")
        else:
            out.append("null")
        return
    if value is None:
        out.append("null")
    elif ty == String:
        out.append(go_json_string(value))
    elif ty == Number:
        text = number_text(value)
        if text.endswith("Inf"):
            raise CtyError(path, "cannot serialize infinity as JSON")
        out.append(text)
    elif ty == Bool:
        out.append("true" if value else "false")
    elif isinstance(ty, List | Set | Tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            ety = ty.elements[i] if isinstance(ty, Tuple) else ty.element
            _write(v, ety, path.index(i), out)
        out.append("]")
    elif isinstance(ty, Map):
        out.append("{")
        for i, k in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(go_json_string(k))
            out.append(":")
            _write(value[k], ty.element, path.key(k), out)
        out.append("}")
    elif isinstance(ty, Object):
        out.append("{")
        for i, (name, aty) in enumerate(ty.attributes.items()):
            if i:
                out.append(",")
            out.append(go_json_string(name))
            out.append(":")
            _write(value[name], aty, path.attr(name), out)
        out.append("}")
    else:
        raise CtyError(path, f"unsupported type {ty!r}")


def decode_json(data: bytes | str, type: Type) -> Any:  # noqa: A002
    """A value of ``type`` from go-cty's JSON; malformed input raises CtyError."""
    if not isinstance(type, Type):
        raise TypeError(f"type must be a cty Type, not {type!r}")
    path = AttributePath()
    try:
        tree = parse_json_tree(data)
    except RecursionError:
        raise CtyError(path, "JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CtyError(path, f"invalid JSON: {exc}") from None
    return _read(tree, type, path, 0)


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and not isinstance(v, JsonNumber)


def _is_array(v: Any) -> bool:
    return isinstance(v, list) and not isinstance(v, _Pairs)


def _read(tree: Any, ty: Type, path: AttributePath, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CtyError(path, f"value nesting deeper than {MAX_DEPTH}")
    if tree is None:
        return None
    if isinstance(ty, DynamicPseudoType):
        return _read_dynamic(tree, path, depth)
    if ty == Bool:
        if isinstance(tree, bool):
            return tree
        if _is_str(tree):
            if tree in ("true", "1"):
                return True
            if tree in ("false", "0"):
                return False
        raise CtyError(path, "bool is required")
    if ty == Number:
        if isinstance(tree, str) and not isinstance(tree, bool):
            return parse_number(str(tree), path)
        raise CtyError(path, "number is required")
    if ty == String:
        if isinstance(tree, bool):
            return "true" if tree else "false"
        if isinstance(tree, str):
            return _nfc(str(tree))
        raise CtyError(path, "string is required")
    if isinstance(ty, List | Set | Tuple):
        if not _is_array(tree):
            raise CtyError(path, "missing expected [")
        if isinstance(ty, Tuple):
            if len(tree) > len(ty.elements):
                raise CtyError(path, f"too many tuple elements (need {len(ty.elements)})")
            if len(tree) < len(ty.elements):
                raise CtyError(path, f"not enough tuple elements (need {len(ty.elements)})")
            return [
                _read(v, et, path.index(i), depth + 1)
                for i, (v, et) in enumerate(zip(tree, ty.elements, strict=True))
            ]
        if isinstance(ty, List):
            return [_read(v, ty.element, path.index(i), depth + 1) for i, v in enumerate(tree)]
        return normalize_set([_read(v, ty.element, path, depth + 1) for v in tree], ty.element)
    if isinstance(ty, Map):
        if not isinstance(tree, _Pairs):
            raise CtyError(path, "missing expected {")
        result: dict[str, Any] = {}
        for k, v in tree:
            key = _nfc(k)
            result[key] = _read(v, ty.element, path.key(key), depth + 1)
        return dict(sorted(result.items()))
    if isinstance(ty, Object):
        if not isinstance(tree, _Pairs):
            raise CtyError(path, "missing expected {")
        values: dict[str, Any] = {}
        for k, v in tree:
            aty = ty.attributes.get(k)
            if aty is None:
                raise CtyError(path, f"unsupported attribute {k!r}")
            values[k] = _read(v, aty, path.attr(k), depth + 1)
        return {name: values.get(name) for name in ty.attributes}
    raise CtyError(path, f"unsupported type {ty!r}")


def _read_dynamic(tree: Any, path: AttributePath, depth: int) -> Any:
    if not isinstance(tree, _Pairs):
        raise CtyError(path, "missing expected {")
    ty: Type | None = None
    body: Any = None
    has_value = False
    for key, raw in tree:
        if key == "type":
            ty = type_from_tree(raw, path)
        elif key == "value":
            body, has_value = raw, True
        else:
            raise CtyError(path, f"invalid key {key!r} in dynamically-typed value")
    if ty is None:
        raise CtyError(path, "missing type in dynamically-typed value")
    if not has_value:
        raise CtyError(path, "missing value in dynamically-typed value")
    value = _read(body, ty, path, depth + 1)
    if isinstance(ty, DynamicPseudoType):
        return value
    return DynamicValue(ty, value)
