"""Plan modifiers and validators, attached to attributes of a :class:`Schema`.

Planning a resource (``PlanResourceChange``) goes, like terraform-plugin-framework:

1. start from Terraform's proposed new state;
2. :class:`Default`s (or ``Attribute(default=...)``) fill attributes the
   configuration leaves null;
3. when the resource is created or changes, computed attributes the configuration
   leaves null become unknown ("known after apply");
4. each attribute's ``plan_modifiers`` run in order (:class:`UseStateForUnknown`
   keeps the prior value, :class:`RequiresReplace` asks for a replacement when the
   value changes);
5. the resource's ``modify_plan`` hook sees the whole plan.

Validators run on known, non-null configuration values (``ValidateResourceConfig``
and friends) and report through :class:`~plugwire.grpc.terraform.Diagnostics`.
A modifier or validator of your own subclasses :class:`PlanModifier` or
:class:`Validator`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from .cty import AttributePath, Unknown
from .diagnostics import Diagnostics

__all__ = [
    "AttributePlan",
    "Between",
    "Default",
    "LengthBetween",
    "OneOf",
    "PlanModifier",
    "RegexMatches",
    "RequiresReplace",
    "RequiresReplaceIf",
    "UseStateForUnknown",
    "Validator",
]


@attrs.define
class AttributePlan:
    """What a plan modifier sees of one attribute, and may change.

    ``config``/``state``/``plan``: the attribute's value in the configuration, the
    prior state and the plan so far (``state`` is None on create). ``creating``: the
    resource does not exist yet. Set ``plan`` to change the planned value and
    ``requires_replace`` to ask for a replacement.
    """

    path: AttributePath
    config: Any
    state: Any
    plan: Any
    creating: bool
    requires_replace: bool = False
    diagnostics: Diagnostics = attrs.field(factory=Diagnostics)


class PlanModifier:
    """Base class of attribute plan modifiers: override :meth:`modify`."""

    def modify(self, req: AttributePlan) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RequiresReplace(PlanModifier):
    """Replace the resource (destroy, then create) when this attribute changes."""

    def modify(self, req: AttributePlan) -> None:
        if req.creating or req.plan == req.state:
            return
        req.requires_replace = True


class RequiresReplaceIf(PlanModifier):
    """Replace the resource when this attribute changes and ``predicate(req)`` holds."""

    def __init__(self, predicate: Callable[[AttributePlan], bool]) -> None:
        self.predicate = predicate

    def modify(self, req: AttributePlan) -> None:
        if req.creating or req.plan == req.state:
            return
        if self.predicate(req):
            req.requires_replace = True


class UseStateForUnknown(PlanModifier):
    """Plan the prior value instead of "known after apply" once the resource exists.

    For computed values that never change after creation (ids, creation times).
    """

    def modify(self, req: AttributePlan) -> None:
        if req.creating or req.state is None:
            return
        if isinstance(req.plan, Unknown) and not isinstance(req.config, Unknown):
            req.plan = req.state


class Default(PlanModifier):
    """Plan ``value`` when the configuration leaves the attribute null.

    ``Attribute(default=v)`` is the short form; the attribute must be computed.
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def modify(self, req: AttributePlan) -> None:
        if req.config is None:
            req.plan = self.value

    def __repr__(self) -> str:
        return f"Default({self.value!r})"


class Validator:
    """Base class of attribute validators: override :meth:`validate`.

    Called only with known, non-null values; report through ``diagnostics``.
    """

    def validate(self, value: Any, path: AttributePath, diagnostics: Diagnostics) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _len(value: Any) -> int:
    return len(value)


class LengthBetween(Validator):
    """A string's (characters) or collection's (elements) length in ``[low, high]``."""

    def __init__(self, low: int = 0, high: int | None = None) -> None:
        self.low, self.high = low, high

    def validate(self, value: Any, path: AttributePath, diagnostics: Diagnostics) -> None:
        n = _len(value)
        if n < self.low or (self.high is not None and n > self.high):
            bound = f"at least {self.low}" if self.high is None else f"{self.low}..{self.high}"
            diagnostics.error(
                "Invalid attribute value length",
                f"{path}: length must be {bound}, got {n}",
                path,
            )


class Between(Validator):
    """A number in ``[low, high]`` (either bound may be None)."""

    def __init__(self, low: float | Decimal | None = None, high: float | Decimal | None = None):
        self.low, self.high = low, high

    def validate(self, value: Any, path: AttributePath, diagnostics: Diagnostics) -> None:
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            diagnostics.error(
                "Invalid attribute value",
                f"{path}: must be between {self.low} and {self.high}, got {value}",
                path,
            )


class OneOf(Validator):
    """The value is one of ``values``."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def validate(self, value: Any, path: AttributePath, diagnostics: Diagnostics) -> None:
        if value not in self.values:
            allowed = ", ".join(repr(v) for v in self.values)
            diagnostics.error(
                "Invalid attribute value",
                f"{path}: must be one of {allowed}, got {value!r}",
                path,
            )


class RegexMatches(Validator):
    """A string matching ``pattern`` (``re.fullmatch``); ``message`` explains it."""

    def __init__(self, pattern: str, message: str = "") -> None:
        self.pattern = re.compile(pattern)
        self.message = message

    def validate(self, value: Any, path: AttributePath, diagnostics: Diagnostics) -> None:
        if not self.pattern.fullmatch(value):
            why = self.message or f"must match {self.pattern.pattern!r}"
            diagnostics.error("Invalid attribute value", f"{path}: {why}, got {value!r}", path)
