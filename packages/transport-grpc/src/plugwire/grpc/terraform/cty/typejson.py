"""cty's JSON type specification (``Type.MarshalJSON`` / ``UnmarshalJSON``).

This is what tfplugin's ``Schema.Attribute.type`` and dynamic values carry:
``"string"``, ``["list","number"]``, ``["object",{"a":"bool"},["a"]]``,
``["tuple",["string","number"]]``, ``"dynamic"``. Output is byte-identical to go-cty's
(compact, object attribute names sorted, Go's HTML-safe string escaping).
"""

from __future__ import annotations

import json
from typing import Any

from .path import AttributePath, CtyError
from ._text import go_json_string
from .types import Bool, Dynamic, List, Map, Number, Object, Set, String, Tuple, Type

__all__ = ["MAX_TYPE_DEPTH", "type_from_json", "type_to_json"]

MAX_TYPE_DEPTH = 64
"""Deepest type nesting accepted from the wire (deeper input raises CtyError)."""

_PRIMITIVES: dict[str, Type] = {"string": String, "number": Number, "bool": Bool, "dynamic": Dynamic}
_NAMES = {String: '"string"', Number: '"number"', Bool: '"bool"', Dynamic: '"dynamic"'}


def _to_json(t: Type, depth: int) -> str:
    if depth > MAX_TYPE_DEPTH:
        raise CtyError(AttributePath(), f"type nesting deeper than {MAX_TYPE_DEPTH}")
    name = _NAMES.get(t)
    if name is not None:
        return name
    if isinstance(t, List):
        return f'["list",{_to_json(t.element, depth + 1)}]'
    if isinstance(t, Set):
        return f'["set",{_to_json(t.element, depth + 1)}]'
    if isinstance(t, Map):
        return f'["map",{_to_json(t.element, depth + 1)}]'
    if isinstance(t, Object):
        attrs = ",".join(
            f"{go_json_string(k)}:{_to_json(v, depth + 1)}" for k, v in t.attributes.items()
        )
        out = f'["object",{{{attrs}}}'
        if t.optional:
            out += ",[" + ",".join(go_json_string(k) for k in sorted(t.optional)) + "]"
        return out + "]"
    if isinstance(t, Tuple):
        return '["tuple",[' + ",".join(_to_json(e, depth + 1) for e in t.elements) + "]]"
    raise CtyError(AttributePath(), f"not a cty type: {t!r}")


def type_to_json(t: Type) -> bytes:
    """The cty JSON type specification of ``t``, as go-cty writes it."""
    return _to_json(t, 0).encode()


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, so duplicates and order survive."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def parse_json_tree(data: bytes | str) -> Any:
    """Parse JSON into lists, ``_Pairs``, str, bool, None and ``Num`` strings."""
    return json.loads(
        data,
        object_pairs_hook=_Pairs,
        parse_int=JsonNumber,
        parse_float=JsonNumber,
        parse_constant=_reject_constant,
    )


class JsonNumber(str):
    """A JSON number token, kept as its text (go-cty's json.Number)."""


def type_from_tree(tree: Any, path: AttributePath, depth: int = 0) -> Type:
    """A type from an already-parsed JSON tree (used by the dynamic-value decoders)."""
    if depth > MAX_TYPE_DEPTH:
        raise CtyError(path, f"type nesting deeper than {MAX_TYPE_DEPTH}")
    if isinstance(tree, str) and not isinstance(tree, JsonNumber):
        prim = _PRIMITIVES.get(tree)
        if prim is None:
            raise CtyError(path, f"invalid primitive type name {tree!r}")
        return prim
    if not isinstance(tree, list) or isinstance(tree, _Pairs):
        raise CtyError(path, "invalid type description")
    if not tree or not isinstance(tree[0], str) or isinstance(tree[0], JsonNumber):
        raise CtyError(path, "invalid complex type kind name")
    kind = tree[0]
    if kind in ("list", "set", "map"):
        if len(tree) != 2:
            raise CtyError(path, f"a {kind} type description has exactly one element type")
        ety = type_from_tree(tree[1], path, depth + 1)
        return List(ety) if kind == "list" else Set(ety) if kind == "set" else Map(ety)
    if kind == "object":
        if len(tree) not in (2, 3) or not isinstance(tree[1], _Pairs):
            raise CtyError(path, "an object type description is [\"object\", {...}, [optional]]")
        attributes = {name: type_from_tree(sub, path, depth + 1) for name, sub in tree[1]}
        optional: list[str] = []
        if len(tree) == 3:
            raw = tree[2]
            if raw is None:
                raw = []
            if not isinstance(raw, list) or isinstance(raw, _Pairs):
                raise CtyError(path, "optional attributes must be a list of names")
            for name in raw:
                if not isinstance(name, str) or isinstance(name, JsonNumber):
                    raise CtyError(path, "optional attribute names must be strings")
                if name not in attributes:
                    raise CtyError(path, f"optional attribute {name!r} is not an attribute")
                optional.append(name)
        return Object(attributes, frozenset(optional))
    if kind == "tuple":
        if len(tree) != 2:
            raise CtyError(path, "a tuple type description is [\"tuple\", [...]]")
        raw = tree[1]
        if raw is None:
            return Tuple(())
        if not isinstance(raw, list) or isinstance(raw, _Pairs):
            raise CtyError(path, "tuple element types must be a list")
        return Tuple([type_from_tree(sub, path, depth + 1) for sub in raw])
    raise CtyError(path, f"invalid complex type kind name {kind!r}")


def type_from_json(data: bytes | str, path: AttributePath | None = None) -> Type:
    """Parse a cty JSON type specification; malformed input raises CtyError."""
    where = path if path is not None else AttributePath()
    try:
        tree = parse_json_tree(data)
    except RecursionError:
        raise CtyError(where, "type description nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CtyError(where, f"invalid type JSON: {exc}") from None
    return type_from_tree(tree, where)
