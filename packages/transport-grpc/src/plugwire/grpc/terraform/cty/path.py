"""Attribute paths into cty values, and the codec's error type.

An :class:`AttributePath` is what Terraform diagnostics carry (tfplugin's
``AttributePath``): attribute names, string map keys and integer list/tuple indexes.
The provider converts it to the protobuf message; this module knows nothing of gRPC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs

__all__ = [
    "AttributeName",
    "AttributePath",
    "AttributeStep",
    "CtyError",
    "ElementKeyInt",
    "ElementKeyString",
]


@attrs.frozen
class AttributeName:
    """``.name``: an object attribute (or a nested block)."""

    name: str


@attrs.frozen
class ElementKeyString:
    """``["key"]``: a map element."""

    key: str


@attrs.frozen
class ElementKeyInt:
    """``[i]``: a list or tuple element (sets have no addressable elements)."""

    index: int


AttributeStep = AttributeName | ElementKeyString | ElementKeyInt


def _tuple_steps(steps: tuple[AttributeStep, ...] | list[AttributeStep]) -> tuple[AttributeStep, ...]:
    return tuple(steps)


@attrs.frozen
class AttributePath:
    """A path from the root of a value: ``AttributePath().attr("a").index(0).key("k")``.

    ``str()`` renders it like Terraform does in messages: ``a[0]["k"]``; the root
    renders as the empty string.
    """

    steps: tuple[AttributeStep, ...] = attrs.field(default=(), converter=_tuple_steps)

    def attr(self, name: str) -> AttributePath:
        return AttributePath((*self.steps, AttributeName(name)))

    def key(self, key: str) -> AttributePath:
        return AttributePath((*self.steps, ElementKeyString(key)))

    def index(self, index: int) -> AttributePath:
        return AttributePath((*self.steps, ElementKeyInt(index)))

    def child(self, step: AttributeStep) -> AttributePath:
        return AttributePath((*self.steps, step))

    @property
    def parent(self) -> AttributePath:
        return AttributePath(self.steps[:-1])

    def __iter__(self) -> Iterator[AttributeStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __str__(self) -> str:
        out: list[str] = []
        for step in self.steps:
            if isinstance(step, AttributeName):
                out.append(f".{step.name}" if out else step.name)
            elif isinstance(step, ElementKeyString):
                out.append(f"[{json.dumps(step.key, ensure_ascii=False)}]")
            else:
                out.append(f"[{step.index}]")
        return "".join(out)


class CtyError(ValueError):
    """A value, type or encoding problem at ``path``.

    Raised for malformed msgpack/JSON, type mismatches and hostile input (oversized
    declarations, nesting beyond the limits); ``str()`` is ``"<path>: <message>"``
    (just the message at the root).
    """

    def __init__(self, path: AttributePath, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[type[CtyError], tuple[AttributePath, str]]:
        return (type(self), (self.path, self.message))
