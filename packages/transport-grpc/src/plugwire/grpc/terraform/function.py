"""Provider functions (``provider::example::upper("x")``): :class:`Function`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from . import cty

__all__ = ["Function", "FunctionError", "Parameter"]


@attrs.frozen
class Parameter:
    """A positional parameter. ``allow_null``: null arguments reach :meth:`Function.run`;
    ``allow_unknown``: unknown ones too (otherwise Terraform skips the call and the
    result is unknown)."""

    name: str
    type: cty.Type
    allow_null: bool = False
    allow_unknown: bool = False
    description: str = ""
    markdown: bool = False

    def to_proto(self, pb: Any) -> Any:
        return pb.Function.Parameter(
            name=self.name,
            type=cty.type_to_json(self.type),
            allow_null_value=self.allow_null,
            allow_unknown_values=self.allow_unknown,
            description=self.description,
            description_kind=1 if self.markdown else 0,
        )


class FunctionError(Exception):
    """Raise from :meth:`Function.run`: ``text`` is shown, ``argument`` (0-based) is the
    argument at fault."""

    def __init__(self, text: str, argument: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.argument = argument


class Function:
    """Base class of a provider function.

    Set ``name``, ``parameters``, optionally ``variadic`` (a last parameter taking
    any number of arguments, passed as a list) and ``return_type``; implement
    :meth:`run`, which gets one Python value per parameter.
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[Sequence[Parameter]] = ()
    variadic: ClassVar[Parameter | None] = None
    return_type: ClassVar[cty.Type]
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""
    deprecation: ClassVar[str | None] = None

    async def run(self, *args: Any) -> Any:
        raise FunctionError(f"function {self.name} is not implemented")

    def to_proto(self, pb: Any) -> Any:
        message = pb.Function(
            parameters=[p.to_proto(pb) for p in self.parameters],
            summary=self.summary,
            description=self.description,
            deprecation_message=self.deprecation or "",
        )
        getattr(message, "return").type = cty.type_to_json(self.return_type)
        if self.variadic is not None:
            message.variadic_parameter.CopyFrom(self.variadic.to_proto(pb))
        return message
