"""The typed schema builder: what a provider, resource or data source accepts.

A :class:`Schema` is a versioned top-level block of :class:`Attribute` and
:class:`NestedAttribute` entries and :class:`NestedBlock` entries (``Block`` is the
same class). Each maps to tfplugin5/6 ``Schema`` messages (:meth:`Schema.to_proto`)
and has a cty type (:meth:`Schema.cty_type`) the values are encoded with::

    Schema(
        version=1,
        attributes={
            "id": Attribute(cty.String, computed=True, plan_modifiers=[UseStateForUnknown()]),
            "name": Attribute(cty.String, required=True, plan_modifiers=[RequiresReplace()]),
            "size": Attribute(cty.Number, optional=True, default=1),
        },
    )

Nested attributes are protocol 6 only (protocol 5 has no ``nested_type``): serving a
schema with one over protocol 5 is a configuration error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from plugwire.core.errors import ConfigError

from . import cty

if TYPE_CHECKING:
    from .plan import PlanModifier, Validator

__all__ = [
    "NOT_SET",
    "Attribute",
    "Block",
    "IdentityAttribute",
    "IdentitySchema",
    "NestedAttribute",
    "NestedBlock",
    "Nesting",
    "Schema",
]


class _NotSet(enum.Enum):
    NOT_SET = "NOT_SET"

    def __repr__(self) -> str:
        return "NOT_SET"


NOT_SET = _NotSet.NOT_SET
"""The ``default`` of an attribute without a default (``None`` is a real default: null)."""


class Nesting(enum.StrEnum):
    """How a nested block or attribute repeats. ``GROUP`` is for blocks only."""

    SINGLE = "single"
    LIST = "list"
    SET = "set"
    MAP = "map"
    GROUP = "group"


_BLOCK_NESTING = {"single": 1, "list": 2, "set": 3, "map": 4, "group": 5}
_OBJECT_NESTING = {"single": 1, "list": 2, "set": 3, "map": 4}


def _tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _flags(self: Any) -> None:
    if self.required and (self.optional or self.computed):
        raise ConfigError(
            "an attribute is either required, or optional and/or computed",
            step="schema",
            seen=f"required={self.required} optional={self.optional} computed={self.computed}",
        )
    if not (self.required or self.optional or self.computed):
        raise ConfigError(
            "an attribute must be required, optional or computed", step="schema", seen="none set"
        )


def _write_only(self: Any) -> None:
    if self.write_only and (self.computed or self.plan_modifiers):
        raise ConfigError(
            "a write-only attribute is configuration only: it cannot be computed, have a "
            "default or plan modifiers",
            step="schema",
            expected="write_only with required or optional",
            seen=f"computed={self.computed} plan_modifiers={len(self.plan_modifiers)}",
        )


@attrs.frozen
class Attribute:
    """One attribute of type ``type``.

    Exactly one of ``required``, or ``optional`` and/or ``computed``. ``default``
    (any value but :data:`NOT_SET`) is planned when the configuration leaves the
    attribute null; an attribute with a default is computed (Terraform requires
    it). ``plan_modifiers`` run in order while planning, ``validators`` while
    validating a configuration. ``deprecation``: a message, marks the attribute
    deprecated. ``write_only``: sent in configuration, never stored (protocol 6.11).
    """

    type: cty.Type
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    description: str = ""
    markdown: bool = False
    deprecation: str | None = None
    write_only: bool = False
    plan_modifiers: tuple[PlanModifier, ...] = attrs.field(default=(), converter=_tuple)
    validators: tuple[Validator, ...] = attrs.field(default=(), converter=_tuple)
    default: Any = NOT_SET

    def __attrs_post_init__(self) -> None:
        if self.default is not NOT_SET and self.required:
            raise ConfigError("a required attribute cannot have a default", step="schema")
        if self.default is not NOT_SET or self.computed:
            object.__setattr__(self, "computed", True)
        if self.default is not NOT_SET and not self.optional:
            object.__setattr__(self, "optional", True)
        _flags(self)
        _write_only(self)

    def cty_type(self) -> cty.Type:
        return self.type

    def to_proto(self, name: str, pb: Any) -> Any:
        return pb.Schema.Attribute(
            name=name,
            type=cty.type_to_json(self.type),
            **_common(self),
        )


@attrs.frozen
class NestedAttribute:
    """An attribute holding objects of ``attributes`` (protocol 6 only).

    ``nesting``: ``SINGLE`` (one object), ``LIST``, ``SET`` or ``MAP`` of objects.
    """

    attributes: Mapping[str, Attribute | NestedAttribute] = attrs.field(converter=_dict)
    nesting: Nesting = Nesting.SINGLE
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    description: str = ""
    markdown: bool = False
    deprecation: str | None = None
    write_only: bool = False
    plan_modifiers: tuple[PlanModifier, ...] = attrs.field(default=(), converter=_tuple)
    validators: tuple[Validator, ...] = attrs.field(default=(), converter=_tuple)
    default: Any = NOT_SET

    def __attrs_post_init__(self) -> None:
        if self.nesting is Nesting.GROUP:
            raise ConfigError("nested attributes cannot use GROUP nesting", step="schema")
        if self.default is not NOT_SET:
            object.__setattr__(self, "computed", True)
            object.__setattr__(self, "optional", True)
        _flags(self)
        _write_only(self)

    def object_type(self) -> cty.Object:
        return cty.Object({k: a.cty_type() for k, a in self.attributes.items()})

    def cty_type(self) -> cty.Type:
        return _nest(self.object_type(), self.nesting)

    def to_proto(self, name: str, pb: Any) -> Any:
        if not hasattr(pb.Schema, "Object"):
            raise ConfigError(
                f"nested attribute {name!r} needs protocol 6",
                step="schema",
                expected="protocol 6 (tfplugin6 nested_type)",
                seen="protocol 5",
            )
        nested = pb.Schema.Object(
            attributes=[a.to_proto(n, pb) for n, a in self.attributes.items()],
            nesting=_OBJECT_NESTING[self.nesting.value],
        )
        return pb.Schema.Attribute(name=name, nested_type=nested, **_common(self))


def _common(a: Attribute | NestedAttribute) -> dict[str, Any]:
    return {
        "description": a.description,
        "description_kind": 1 if a.markdown else 0,
        "required": a.required,
        "optional": a.optional,
        "computed": a.computed,
        "sensitive": a.sensitive,
        "deprecated": a.deprecation is not None,
        "deprecation_message": a.deprecation or "",
        "write_only": a.write_only,
    }


def _nest(element: cty.Type, nesting: Nesting) -> cty.Type:
    if nesting in (Nesting.SINGLE, Nesting.GROUP):
        return element
    if nesting is Nesting.LIST:
        return cty.List(element)
    if nesting is Nesting.SET:
        return cty.Set(element)
    return cty.Map(element)


@attrs.frozen
class NestedBlock:
    """A nested block ``name { ... }`` of ``attributes`` and further ``blocks``.

    ``nesting``: ``SINGLE``/``GROUP`` (at most one; a ``GROUP`` is never null),
    ``LIST``, ``SET`` or ``MAP`` (labelled). ``min_items``/``max_items`` bound how
    many a configuration may hold.
    """

    attributes: Mapping[str, Attribute | NestedAttribute] = attrs.field(
        factory=dict, converter=_dict
    )
    blocks: Mapping[str, NestedBlock] = attrs.field(factory=dict, converter=_dict)
    nesting: Nesting = Nesting.LIST
    min_items: int = 0
    max_items: int = 0
    description: str = ""
    markdown: bool = False
    deprecation: str | None = None

    def object_type(self) -> cty.Object:
        types: dict[str, cty.Type] = {k: a.cty_type() for k, a in self.attributes.items()}
        types.update({k: b.cty_type() for k, b in self.blocks.items()})
        return cty.Object(types)

    def cty_type(self) -> cty.Type:
        return _nest(self.object_type(), self.nesting)

    def block_proto(self, pb: Any, version: int = 0) -> Any:
        return pb.Schema.Block(
            version=version,
            attributes=[a.to_proto(n, pb) for n, a in self.attributes.items()],
            block_types=[b.to_proto(n, pb) for n, b in self.blocks.items()],
            description=self.description,
            description_kind=1 if self.markdown else 0,
            deprecated=self.deprecation is not None,
            deprecation_message=self.deprecation or "",
        )

    def to_proto(self, name: str, pb: Any) -> Any:
        return pb.Schema.NestedBlock(
            type_name=name,
            block=self.block_proto(pb),
            nesting=_BLOCK_NESTING[self.nesting.value],
            min_items=self.min_items,
            max_items=self.max_items,
        )


Block = NestedBlock
"""The same class as :class:`NestedBlock`."""


@attrs.frozen
class Schema:
    """A versioned top-level block: a provider's, resource's or data source's schema.

    ``version`` is the resource state's schema version: raise it when the state's
    shape changes and implement :meth:`Resource.upgrade_state` for older versions.
    """

    attributes: Mapping[str, Attribute | NestedAttribute] = attrs.field(
        factory=dict, converter=_dict
    )
    blocks: Mapping[str, NestedBlock] = attrs.field(factory=dict, converter=_dict)
    version: int = 0
    description: str = ""
    markdown: bool = False
    deprecation: str | None = None

    def block(self) -> NestedBlock:
        """The top-level block (``SINGLE`` nesting)."""
        return NestedBlock(
            attributes=self.attributes,
            blocks=self.blocks,
            nesting=Nesting.SINGLE,
            description=self.description,
            markdown=self.markdown,
            deprecation=self.deprecation,
        )

    def cty_type(self) -> cty.Object:
        """The object type values of this schema are encoded with."""
        return self.block().object_type()

    def to_proto(self, pb: Any) -> Any:
        """This schema as ``pb.Schema`` (``pb``: tfplugin5_pb2 or tfplugin6_pb2)."""
        return pb.Schema(version=self.version, block=self.block().block_proto(pb, self.version))


@attrs.frozen
class IdentityAttribute:
    """One attribute of a resource's identity (:class:`IdentitySchema`).

    Identity attributes are always known once a resource exists. ``required_for_import``:
    an ``import`` block's ``identity`` must set it; ``optional_for_import``: the provider
    can supply it (exactly one of the two).
    """

    type: cty.Type
    required_for_import: bool = False
    optional_for_import: bool = False
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if self.required_for_import == self.optional_for_import:
            raise ConfigError(
                "an identity attribute is either required_for_import or optional_for_import",
                step="schema",
                seen=f"required_for_import={self.required_for_import} "
                f"optional_for_import={self.optional_for_import}",
            )

    def to_proto(self, name: str, pb: Any) -> Any:
        return pb.ResourceIdentitySchema.IdentityAttribute(
            name=name,
            type=cty.type_to_json(self.type),
            required_for_import=self.required_for_import,
            optional_for_import=self.optional_for_import,
            description=self.description,
        )


@attrs.frozen
class IdentitySchema:
    """A managed resource's identity: a small versioned object that names the remote
    object for good (``GetResourceIdentitySchemas``), e.g. ``{"name": ...}``.

    ``version`` is separate from the resource schema's: raise it when the identity's
    shape changes and implement :meth:`Resource.upgrade_identity` for older versions.
    """

    attributes: Mapping[str, IdentityAttribute] = attrs.field(converter=_dict)
    version: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.attributes:
            raise ConfigError("an identity schema needs at least one attribute", step="schema")

    def cty_type(self) -> cty.Object:
        """The object type identity data is encoded with."""
        return cty.Object({k: a.type for k, a in self.attributes.items()})

    def to_proto(self, pb: Any) -> Any:
        """This identity schema as ``pb.ResourceIdentitySchema``."""
        return pb.ResourceIdentitySchema(
            version=self.version,
            identity_attributes=[a.to_proto(n, pb) for n, a in self.attributes.items()],
        )
