"""cty, Terraform's type and value system: types, values and their wire codecs.

Byte-compatible with github.com/zclconf/go-cty (``cty/msgpack``, ``cty/json`` and the
JSON type specification) as Terraform and terraform-plugin-go use it. Values are
plain Python (see :mod:`.values`); this package needs the ``msgpack`` distribution
(``plugwire[terraform]``).
"""

from __future__ import annotations

from .json import decode_json, encode_json
from .msgpack import decode_msgpack, encode_msgpack
from .path import (
    AttributeName,
    AttributePath,
    AttributeStep,
    CtyError,
    ElementKeyInt,
    ElementKeyString,
)
from .typejson import MAX_TYPE_DEPTH, type_from_json, type_to_json
from .types import (
    Bool,
    Dynamic,
    DynamicPseudoType,
    List,
    Map,
    Number,
    Object,
    PrimitiveType,
    Set,
    String,
    Tuple,
    Type,
)
from .values import (
    MAX_DEPTH,
    UNKNOWN,
    DynamicValue,
    Marked,
    Unknown,
    conform,
    implied_type,
    sensitive,
    unmark,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_TYPE_DEPTH",
    "UNKNOWN",
    "AttributeName",
    "AttributePath",
    "AttributeStep",
    "Bool",
    "CtyError",
    "Dynamic",
    "DynamicPseudoType",
    "DynamicValue",
    "ElementKeyInt",
    "ElementKeyString",
    "List",
    "Map",
    "Marked",
    "Number",
    "Object",
    "PrimitiveType",
    "Set",
    "String",
    "Tuple",
    "Type",
    "Unknown",
    "conform",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
    "implied_type",
    "sensitive",
    "type_from_json",
    "type_to_json",
    "unmark",
]
