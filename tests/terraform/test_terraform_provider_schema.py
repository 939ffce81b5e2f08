"""The schema builder, plan modifiers, validators, diagnostics and the provider core,
in process (the protocol servers' logic without a launch)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from provider_support import anyio_backend, modules

from plugwire.core.errors import ConfigError
from plugwire.grpc.terraform import (
    Attribute,
    Between,
    Context,
    Default,
    Diagnostics,
    NestedAttribute,
    NestedBlock,
    Nesting,
    OneOf,
    PlanModifier,
    Provider,
    RegexMatches,
    RequiresReplace,
    Resource,
    Schema,
    cty,
)
from plugwire.grpc.terraform._core import ProviderCore
from plugwire.grpc.terraform.diagnostics import path_from_proto, path_to_proto
from plugwire.grpc.terraform.plan import AttributePlan

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

PB5, PB6 = modules(5)[0], modules(6)[0]


class Suffix(PlanModifier):
    """A custom modifier: plans ``value + "!"`` for a known value."""

    def modify(self, req: AttributePlan) -> None:
        if isinstance(req.plan, str):
            req.plan = req.plan + "!"


NESTED = Schema(
    version=2,
    attributes={
        "name": Attribute(cty.String, required=True, validators=[RegexMatches(r"[a-z]+")]),
        "mode": Attribute(cty.String, optional=True, validators=[OneOf("a", "b")]),
        "opts": NestedAttribute(
            {
                "x": Attribute(cty.Number, optional=True, default=5),
                "y": Attribute(cty.String, computed=True),
            },
            nesting=Nesting.SINGLE,
            optional=True,
        ),
    },
    blocks={
        "rule": NestedBlock(
            attributes={
                "port": Attribute(
                    cty.Number,
                    required=True,
                    validators=[Between(1, 65535)],
                    plan_modifiers=[RequiresReplace()],
                ),
                "label": Attribute(cty.String, optional=True, plan_modifiers=[Suffix()]),
            },
            nesting=Nesting.LIST,
            max_items=4,
        ),
        "meta": NestedBlock(
            attributes={"k": Attribute(cty.String, optional=True)}, nesting=Nesting.SINGLE
        ),
    },
)

OPTS = cty.Object({"x": cty.Number, "y": cty.String})
RULE = cty.Object({"port": cty.Number, "label": cty.String})
NESTED_TYPE = cty.Object(
    {
        "name": cty.String,
        "mode": cty.String,
        "opts": OPTS,
        "rule": cty.List(RULE),
        "meta": cty.Object({"k": cty.String}),
    }
)


def test_cty_type_of_a_schema() -> None:
    assert NESTED.cty_type() == NESTED_TYPE
    sets = Schema(
        blocks={
            "s": NestedBlock(
                attributes={"a": Attribute(cty.Bool, optional=True)}, nesting=Nesting.SET
            ),
            "m": NestedBlock(
                attributes={"a": Attribute(cty.Bool, optional=True)}, nesting=Nesting.MAP
            ),
        },
        attributes={
            "l": NestedAttribute(
                {"b": Attribute(cty.String, optional=True)}, nesting=Nesting.LIST, optional=True
            )
        },
    )
    obj_a = cty.Object({"a": cty.Bool})
    assert sets.cty_type() == cty.Object(
        {"l": cty.List(cty.Object({"b": cty.String})), "s": cty.Set(obj_a), "m": cty.Map(obj_a)}
    )


def test_schema_protos_for_both_protocols() -> None:
    p6 = NESTED.to_proto(PB6)
    assert p6.version == 2 and p6.block.version == 2
    attrs = {a.name: a for a in p6.block.attributes}
    assert attrs["opts"].nested_type.nesting == PB6.Schema.Object.SINGLE
    assert [a.name for a in attrs["opts"].nested_type.attributes] == ["x", "y"]
    assert json.loads(attrs["name"].type) == "string" and attrs["name"].required
    blocks = {b.type_name: b for b in p6.block.block_types}
    assert blocks["rule"].nesting == PB6.Schema.NestedBlock.LIST and blocks["rule"].max_items == 4
    assert blocks["meta"].nesting == PB6.Schema.NestedBlock.SINGLE
    # Protocol 5 has no nested attributes: a configuration error naming the attribute.
    with pytest.raises(ConfigError, match="opts"):
        NESTED.to_proto(PB5)
    flat = Schema(attributes={"a": Attribute(cty.List(cty.String), optional=True, sensitive=True)})
    p5 = flat.to_proto(PB5)
    assert p5.block.attributes[0].sensitive
    assert json.loads(p5.block.attributes[0].type) == ["list", "string"]
    dep = Schema(attributes={"a": Attribute(cty.String, optional=True, deprecation="use b")})
    a = dep.to_proto(PB6).block.attributes[0]
    assert a.deprecated and a.deprecation_message == "use b"


def test_attribute_flags() -> None:
    with pytest.raises(ConfigError):
        Attribute(cty.String, required=True, computed=True)
    with pytest.raises(ConfigError):
        Attribute(cty.String)
    with pytest.raises(ConfigError):
        Attribute(cty.String, required=True, default="x")
    d = Attribute(cty.Number, default=1)
    assert d.optional and d.computed and not d.required


def test_provider_registry_checks() -> None:
    class Bad(Resource):
        type_name = "other_thing"

    with pytest.raises(ConfigError, match="other_thing"):
        Provider("example", resources=[Bad()])

    class Dup(Resource):
        type_name = "example_x"

    with pytest.raises(ConfigError, match="two resources"):
        Provider("example", resources=[Dup(), Dup()])


def test_attribute_path_proto_round_trip() -> None:
    path = cty.AttributePath().attr("rule").index(2).attr("tags").key("k")
    message = path_to_proto(path, PB6)
    assert [s.WhichOneof("selector") for s in message.steps] == [
        "attribute_name",
        "element_key_int",
        "attribute_name",
        "element_key_string",
    ]
    assert path_from_proto(message) == path


class Nested(Resource):
    type_name = "t_nested"
    schema = NESTED

    def __init__(self) -> None:
        self.seen_plan: dict[str, Any] | None = None

    async def modify_plan(
        self,
        prior: dict[str, Any] | None,
        config: dict[str, Any],
        plan: dict[str, Any],
        ctx: Context,
    ) -> dict[str, Any]:
        self.seen_plan = plan
        if plan["mode"] == "b":
            ctx.diagnostics.warning("mode b is slow", path=cty.AttributePath().attr("mode"))
        return plan

    async def create(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if plan["name"] == "boom":
            raise RuntimeError("kaboom")
        return {**plan, "opts": {"x": 5, "y": "made"}}


def _core() -> tuple[ProviderCore, Nested]:
    resource = Nested()
    return ProviderCore(Provider("t", resources=[resource]), PB6, 6), resource


def _dv(value: Any) -> Any:
    return PB6.DynamicValue(msgpack=cty.encode_msgpack(value, NESTED_TYPE))


def _val(dv: Any) -> Any:
    return cty.decode_msgpack(dv.msgpack, NESTED_TYPE)


async def test_validators_name_the_paths() -> None:
    core, _ = _core()
    config = {
        "name": "Upper",
        "mode": "c",
        "opts": None,
        "rule": [{"port": 80, "label": None}, {"port": 70000, "label": None}],
        "meta": None,
    }
    resp = await core.validate_resource_config(
        PB6.ValidateResourceConfig.Request(type_name="t_nested", config=_dv(config)),
        PB6.ValidateResourceConfig.Response,
    )
    paths = sorted(str(path_from_proto(d.attribute)) for d in resp.diagnostics)
    assert paths == ["mode", "name", "rule[1].port"]


async def test_plan_nested_defaults_unknowns_modifiers_and_replace() -> None:
    core, resource = _core()
    config = {
        "name": "a",
        "mode": "b",
        "opts": {"x": None, "y": None},
        "rule": [{"port": 80, "label": "web"}],
        "meta": None,
    }
    resp = await core.plan_resource_change(
        PB6.PlanResourceChange.Request(
            type_name="t_nested",
            prior_state=_dv(None),
            proposed_new_state=_dv(config),
            config=_dv(config),
        ),
        PB6.PlanResourceChange.Response,
    )
    assert [d.summary for d in resp.diagnostics] == ["mode b is slow"]
    planned = _val(resp.planned_state)
    assert planned["opts"] == {"x": 5, "y": cty.UNKNOWN}  # nested default, nested computed
    assert planned["rule"] == [{"port": 80, "label": "web!"}]  # custom modifier in a block
    assert resource.seen_plan == planned
    assert not resp.requires_replace  # create

    prior = {**config, "opts": {"x": 5, "y": "made"}, "rule": [{"port": 80, "label": "web!"}]}
    changed = {**prior, "rule": [{"port": 81, "label": "web!"}]}
    cfg2 = {**config, "rule": [{"port": 81, "label": "web"}]}
    resp2 = await core.plan_resource_change(
        PB6.PlanResourceChange.Request(
            type_name="t_nested",
            prior_state=_dv(prior),
            proposed_new_state=_dv(changed),
            config=_dv(cfg2),
        ),
        PB6.PlanResourceChange.Response,
    )
    assert [str(path_from_proto(p)) for p in resp2.requires_replace] == ["rule[0].port"]


async def test_unexpected_exception_becomes_a_diagnostic() -> None:
    core, _ = _core()
    planned = {"name": "boom", "mode": None, "opts": None, "rule": [], "meta": None}
    resp = await core.apply_resource_change(
        PB6.ApplyResourceChange.Request(
            type_name="t_nested",
            prior_state=_dv(None),
            planned_state=_dv(planned),
            config=_dv(planned),
        ),
        PB6.ApplyResourceChange.Response,
    )
    [d] = resp.diagnostics
    assert d.summary == "Unexpected error in t_nested create" and "kaboom" in d.detail
    assert not resp.new_state.msgpack


async def test_unknown_left_after_apply_is_an_error_naming_the_path() -> None:
    class Lazy(Resource):
        type_name = "t_lazy"
        schema = Schema(attributes={"id": Attribute(cty.String, computed=True)})

        async def create(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
            return plan  # id still unknown

    core = ProviderCore(Provider("t", resources=[Lazy()]), PB6, 6)
    t = cty.Object({"id": cty.String})
    resp = await core.apply_resource_change(
        PB6.ApplyResourceChange.Request(
            type_name="t_lazy",
            prior_state=PB6.DynamicValue(msgpack=cty.encode_msgpack(None, t)),
            planned_state=PB6.DynamicValue(msgpack=cty.encode_msgpack({"id": cty.UNKNOWN}, t)),
        ),
        PB6.ApplyResourceChange.Response,
    )
    [d] = resp.diagnostics
    assert d.summary == "Provider returned an unknown value"
    assert str(path_from_proto(d.attribute)) == "id"


def test_default_modifier_and_diagnostics_helpers() -> None:
    req = AttributePlan(
        path=cty.AttributePath().attr("a"), config=None, state=None, plan=None, creating=True
    )
    Default("x").modify(req)
    assert req.plan == "x"
    diags = Diagnostics()
    diags.warning("w")
    assert not diags.has_errors
    diags.cty_error(cty.CtyError(cty.AttributePath().attr("b"), "bad"))
    assert diags.has_errors and str(diags.errors[0].path) == "b"
