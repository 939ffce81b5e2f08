"""Terraform diagnostics: what a provider tells the user instead of raising.

A :class:`Diagnostics` collects :class:`Diagnostic` entries (error or warning, a
summary, a detail and optionally the :class:`~plugwire.grpc.terraform.cty.AttributePath`
it is about); the servers turn them into tfplugin5/6 ``Diagnostic`` messages, so
Terraform shows them next to the offending line of configuration. Provider code adds
them through ``ctx.diagnostics.error(...)``/``.warning(...)`` or raises
:class:`TerraformError`; a :class:`~plugwire.grpc.terraform.cty.CtyError` becomes an
error naming its path.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .cty import AttributePath, CtyError

__all__ = [
    "Diagnostic",
    "Diagnostics",
    "Severity",
    "TerraformError",
    "path_from_proto",
    "path_to_proto",
]


class Severity(enum.IntEnum):
    """A diagnostic's severity, numbered as in the protocol."""

    ERROR = 1
    WARNING = 2


@attrs.frozen
class Diagnostic:
    """One diagnostic. ``path``: the attribute it is about (Terraform underlines it)."""

    severity: Severity
    summary: str
    detail: str = ""
    path: AttributePath | None = None

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path is not None and self.path.steps else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.severity.name.lower()}{where}: {self.summary}{detail}"

    def to_proto(self, pb: Any) -> Any:
        """This diagnostic as ``pb.Diagnostic`` (``pb``: tfplugin5_pb2 or tfplugin6_pb2)."""
        message = pb.Diagnostic(
            severity=int(self.severity), summary=self.summary, detail=self.detail
        )
        if self.path is not None and self.path.steps:
            message.attribute.CopyFrom(path_to_proto(self.path, pb))
        return message


class Diagnostics:
    """An ordered collection of diagnostics, with helpers to add them."""

    def __init__(self, items: Iterable[Diagnostic] = ()) -> None:
        self._items: list[Diagnostic] = list(items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __repr__(self) -> str:
        return f"Diagnostics({self._items!r})"

    def add(self, diagnostic: Diagnostic) -> None:
        self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    def error(self, summary: str, detail: str = "", path: AttributePath | None = None) -> None:
        """Add an error: the operation fails and Terraform shows ``summary``/``detail``."""
        self._items.append(Diagnostic(Severity.ERROR, summary, detail, path))

    def warning(self, summary: str, detail: str = "", path: AttributePath | None = None) -> None:
        """Add a warning: shown to the user, the operation goes on."""
        self._items.append(Diagnostic(Severity.WARNING, summary, detail, path))

    def cty_error(self, exc: CtyError, summary: str = "Invalid value") -> None:
        """Add an error for a value that does not fit its type, naming ``exc.path``."""
        self._items.append(Diagnostic(Severity.ERROR, summary, str(exc.message), exc.path))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self._items)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self._items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self._items if d.severity is Severity.WARNING]

    def to_proto(self, pb: Any) -> list[Any]:
        return [d.to_proto(pb) for d in self._items]


class TerraformError(Exception):
    """Raise from provider code to fail the operation with an error diagnostic.

    ``TerraformError("Name taken", "a thing named x exists", path=AttributePath().attr("name"))``.
    """

    def __init__(self, summary: str, detail: str = "", path: AttributePath | None = None) -> None:
        super().__init__(f"{summary}: {detail}" if detail else summary)
        self.diagnostic = Diagnostic(Severity.ERROR, summary, detail, path)


def path_to_proto(path: AttributePath, pb: Any) -> Any:
    """``path`` as ``pb.AttributePath``."""
    steps = []
    for step in path.steps:
        kind, value = _step(step)
        steps.append(pb.AttributePath.Step(**{kind: value}))
    return pb.AttributePath(steps=steps)


def path_from_proto(message: Any) -> AttributePath:
    """A protocol ``AttributePath`` as a cty :class:`AttributePath`."""
    path = AttributePath()
    for step in message.steps:
        which = step.WhichOneof("selector")
        if which == "attribute_name":
            path = path.attr(step.attribute_name)
        elif which == "element_key_string":
            path = path.key(step.element_key_string)
        elif which == "element_key_int":
            path = path.index(step.element_key_int)
    return path


def _step(step: Any) -> tuple[str, Any]:
    from . import cty

    if isinstance(step, cty.AttributeName):
        return "attribute_name", step.name
    if isinstance(step, cty.ElementKeyString):
        return "element_key_string", step.key
    if isinstance(step, cty.ElementKeyInt):
        return "element_key_int", step.index
    raise TypeError(f"not an attribute path step: {step!r}")
