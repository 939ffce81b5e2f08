"""cty types: the type system of Terraform values.

Types are frozen, hashable and compare by structure. ``String``, ``Number``, ``Bool``
and ``Dynamic`` (cty's DynamicPseudoType: "any type, decided per value") are
singletons; ``List``, ``Set``, ``Map``, ``Object`` and ``Tuple`` are built from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

import attrs

__all__ = [
    "Bool",
    "Dynamic",
    "DynamicPseudoType",
    "List",
    "Map",
    "Number",
    "Object",
    "PrimitiveType",
    "Set",
    "String",
    "Tuple",
    "Type",
]


class Type:
    """Base of every cty type."""

    __slots__ = ()

    def friendly_name(self) -> str:
        """The name Terraform uses in messages: ``list of string``, ``object``..."""
        raise NotImplementedError

    @property
    def is_primitive(self) -> bool:
        return isinstance(self, PrimitiveType)

    @property
    def is_collection(self) -> bool:
        """List, set or map: the types whose values have a length refinement."""
        return isinstance(self, List | Set | Map)


@attrs.frozen(repr=False)
class PrimitiveType(Type):
    """``string``, ``number`` or ``bool`` (use the module constants)."""

    name: str

    def friendly_name(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name.capitalize()


@attrs.frozen(repr=False)
class DynamicPseudoType(Type):
    """cty.DynamicPseudoType: the value carries its own type (use ``Dynamic``)."""

    def friendly_name(self) -> str:
        return "dynamic"

    def __repr__(self) -> str:
        return "Dynamic"


String: Final = PrimitiveType("string")
Number: Final = PrimitiveType("number")
Bool: Final = PrimitiveType("bool")
Dynamic: Final = DynamicPseudoType()


def _check_type(value: object, what: str) -> None:
    if not isinstance(value, Type):
        raise TypeError(f"{what} must be a cty Type, not {type(value).__name__}")


@attrs.frozen
class List(Type):
    element: Type = attrs.field()

    @element.validator
    def _check(self, _a: object, value: object) -> None:
        _check_type(value, "List element type")

    def friendly_name(self) -> str:
        return f"list of {self.element.friendly_name()}"


@attrs.frozen
class Set(Type):
    element: Type = attrs.field()

    @element.validator
    def _check(self, _a: object, value: object) -> None:
        _check_type(value, "Set element type")

    def friendly_name(self) -> str:
        return f"set of {self.element.friendly_name()}"


@attrs.frozen
class Map(Type):
    element: Type = attrs.field()

    @element.validator
    def _check(self, _a: object, value: object) -> None:
        _check_type(value, "Map element type")

    def friendly_name(self) -> str:
        return f"map of {self.element.friendly_name()}"


class FrozenMap(Mapping[str, Type]):
    """An immutable, hashable name -> type mapping, iterated in sorted name order."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[str, Type] | Iterable[tuple[str, Type]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        data: dict[str, Type] = {}
        for name, ty in pairs:
            if not isinstance(name, str):
                raise TypeError(f"attribute names must be str, not {type(name).__name__}")
            _check_type(ty, f"type of attribute {name!r}")
            data[name] = ty
        self._items = dict(sorted(data.items()))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Type:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._items)


def _frozen_map(value: Mapping[str, Type]) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


@attrs.frozen
class Object(Type):
    """An object type; ``optional`` names attributes that may be omitted in config."""

    attributes: FrozenMap = attrs.field(converter=_frozen_map)
    optional: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    @optional.validator
    def _check_optional(self, _a: object, value: frozenset[str]) -> None:
        missing = sorted(name for name in value if name not in self.attributes)
        if missing:
            raise ValueError(f"optional attributes {missing} are not attributes of the object")

    def friendly_name(self) -> str:
        return "object"


def _type_tuple(value: Sequence[Type]) -> tuple[Type, ...]:
    out = tuple(value)
    for i, ty in enumerate(out):
        _check_type(ty, f"Tuple element {i}")
    return out


@attrs.frozen
class Tuple(Type):
    elements: tuple[Type, ...] = attrs.field(converter=_type_tuple)

    def friendly_name(self) -> str:
        return "tuple"
