"""The schema builder's typed API for identity, write-only attributes and deprecation:
what it accepts, what it refuses (a ConfigError naming the rule), and the tfplugin5/6
messages it produces."""

from __future__ import annotations

import pytest
from provider_support import modules

from plugwire.core.errors import ConfigError
from plugwire.grpc.terraform import (
    Attribute,
    IdentityAttribute,
    IdentitySchema,
    NestedBlock,
    RequiresReplace,
    Schema,
    cty,
)
from plugwire.grpc.terraform.examples.thing import Thing

VERSIONS = pytest.mark.parametrize("version", [5, 6], ids=["tfplugin5", "tfplugin6"])


@VERSIONS
def test_identity_schema_to_proto(version: int) -> None:
    pb = modules(version)[0]
    schema = IdentitySchema(
        {
            "name": IdentityAttribute(cty.String, required_for_import=True, description="N"),
            "region": IdentityAttribute(cty.String, optional_for_import=True),
        },
        version=3,
    )
    msg = schema.to_proto(pb)
    assert msg.version == 3
    attrs = {a.name: a for a in msg.identity_attributes}
    assert attrs["name"].required_for_import and not attrs["name"].optional_for_import
    assert attrs["name"].description == "N" and attrs["name"].type == b'"string"'
    assert attrs["region"].optional_for_import
    assert schema.cty_type() == cty.Object({"name": cty.String, "region": cty.String})


def test_identity_attribute_needs_exactly_one_import_flag() -> None:
    with pytest.raises(ConfigError, match="required_for_import or optional_for_import"):
        IdentityAttribute(cty.String)
    with pytest.raises(ConfigError, match="required_for_import or optional_for_import"):
        IdentityAttribute(cty.String, required_for_import=True, optional_for_import=True)
    with pytest.raises(ConfigError, match="at least one attribute"):
        IdentitySchema({})


def test_write_only_cannot_be_computed_defaulted_or_plan_modified() -> None:
    Attribute(cty.String, optional=True, write_only=True)
    Attribute(cty.String, required=True, write_only=True)
    with pytest.raises(ConfigError, match="write-only"):
        Attribute(cty.String, optional=True, computed=True, write_only=True)
    with pytest.raises(ConfigError, match="write-only"):
        Attribute(cty.String, optional=True, default="x", write_only=True)
    with pytest.raises(ConfigError, match="write-only"):
        Attribute(cty.String, optional=True, write_only=True, plan_modifiers=[RequiresReplace()])


@VERSIONS
def test_write_only_and_deprecation_in_the_schema_message(version: int) -> None:
    pb = modules(version)[0]
    schema = Schema(
        attributes={
            "pw": Attribute(cty.String, optional=True, write_only=True),
            "old": Attribute(cty.String, optional=True, deprecation="use new"),
        },
        blocks={"b": NestedBlock(deprecation="block gone")},
        deprecation="resource gone",
    )
    block = schema.to_proto(pb).block
    attrs = {a.name: a for a in block.attributes}
    assert attrs["pw"].write_only and not attrs["pw"].deprecated
    assert attrs["old"].deprecated and attrs["old"].deprecation_message == "use new"
    assert block.deprecated and block.deprecation_message == "resource gone"
    (nested,) = block.block_types
    assert nested.block.deprecated and nested.block.deprecation_message == "block gone"


def test_example_thing_default_identity_is_the_same_named_attributes() -> None:
    assert Thing().identity({"id": "thing-a", "name": "a", "size": 1}) == {"name": "a"}
