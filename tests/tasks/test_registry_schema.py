"""Registry and payload-schema rules of the task-plugin family."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from plugwire.core.errors import ConfigError, PlugwireError
from plugwire.core.tasks import (
    MalformedPayloadError,
    Plugin,
    PluginLoadError,
    PluginOptions,
    PluginProvider,
    Registry,
    RegistryError,
    SchemaConflictError,
    filter_payload,
    merge_payload_schemas,
    object_schema,
    schema_errors,
    validate_payload,
)
from plugwire.core.tasks.testing import RecorderProvider


class _Provider(PluginProvider):
    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return Plugin()


PROVIDER = _Provider()
NOT_A_PROVIDER = object()


def _broken() -> PluginProvider:
    raise RuntimeError("cannot build")


def _ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name, value, "plugwire.task_plugins")


def test_register_and_get() -> None:
    reg = Registry(entry_points=())
    provider = RecorderProvider()
    reg.register("rec", provider)
    assert reg.get("rec") is provider
    assert reg.names() == ["rec"]
    assert "rec" in reg and "other" not in reg


def test_duplicate_name_rejected() -> None:
    reg = Registry(entry_points=())
    reg.register("rec", RecorderProvider())
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("rec", RecorderProvider())


def test_name_taken_by_entry_point_rejected() -> None:
    reg = Registry(entry_points=[_ep("ep", f"{__name__}:PROVIDER")])
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("ep", RecorderProvider())


@pytest.mark.parametrize("name", ["disabled", "engine", "manager"])
def test_reserved_names_rejected(name: str) -> None:
    with pytest.raises(RegistryError, match="reserved") as info:
        Registry(entry_points=()).register(name, RecorderProvider())
    assert info.value.seen == name


@pytest.mark.parametrize("name", ["", "Upper", "1abc", "a b", "x" * 64, 3])
def test_malformed_names_rejected(name: Any) -> None:
    with pytest.raises(RegistryError, match="invalid task-plugin name"):
        Registry(entry_points=()).register(name, RecorderProvider())


def test_non_provider_rejected() -> None:
    with pytest.raises(RegistryError, match="not a PluginProvider"):
        Registry(entry_points=()).register("x", object())  # type: ignore[arg-type]


def test_entry_points_load_lazily_instance_or_factory() -> None:
    reg = Registry(
        entry_points=[
            _ep("inst", f"{__name__}:PROVIDER"),
            _ep("cls", f"{__name__}:_Provider"),
            _ep("broken", f"{__name__}:_broken"),
            _ep("missing", "no_such_module_xyz:thing"),
            _ep("wrong", f"{__name__}:NOT_A_PROVIDER"),
        ]
    )
    assert reg.names() == ["broken", "cls", "inst", "missing", "wrong"]
    assert reg.get("inst") is PROVIDER
    assert isinstance(reg.get("cls"), _Provider)
    with pytest.raises(PluginLoadError, match="cannot create") as info:
        reg.get("broken")
    assert info.value.peer == "broken"
    with pytest.raises(PluginLoadError, match="cannot load"):
        reg.get("missing")
    with pytest.raises(PluginLoadError, match="not a PluginProvider"):
        reg.get("wrong")
    with pytest.raises(RegistryError, match="unknown task plugin") as unknown:
        reg.get("nope")
    assert "inst" in str(unknown.value.expected)


def test_two_entry_points_same_name_rejected() -> None:
    reg = Registry(entry_points=[_ep("x", "a:b"), _ep("x", "c:d")])
    with pytest.raises(RegistryError, match="two entry points"):
        reg.names()


def test_reserved_entry_point_name_rejected() -> None:
    with pytest.raises(RegistryError, match="reserved"):
        Registry(entry_points=[_ep("disabled", "a:b")]).names()


# -- schemas ------------------------------------------------------------------------


def test_merge_is_union_and_closed() -> None:
    merged = merge_payload_schemas(
        {
            "a": object_schema({"x": {"type": "string"}}, required=["x"], title="A"),
            "b": object_schema({"y": {"type": "integer"}, "x": {"type": "string"}}, ["y"]),
        }
    )
    assert merged == {
        "type": "object",
        "properties": {"x": {"type": "string"}, "y": {"type": "integer"}},
        "required": ["x", "y"],
        "additionalProperties": False,
    }
    assert schema_errors(merged, {"x": "1", "y": 2}) == []
    assert schema_errors(merged, {"x": "1", "y": 2, "z": 3}) == [
        "task.payload: Additional properties are not allowed ('z' was unexpected)"
    ]


def test_merge_conflict_names_both_plugins() -> None:
    with pytest.raises(SchemaConflictError) as info:
        merge_payload_schemas(
            {
                "first": object_schema({"x": {"type": "string"}}),
                "second": object_schema({"x": {"type": "integer"}}),
            }
        )
    err = info.value
    assert err.key == "x"
    assert err.owners == ("first", "second")
    assert "'first'" in str(err) and "'second'" in str(err)
    assert isinstance(err, ConfigError)


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "string"}, "must describe an object"),
        ({"type": "object", "minProperties": 1}, "cannot be merged"),
        ({"type": "object", "properties": {}, "required": ["q"]}, "requires keys"),
        ({"type": 12}, "not a valid JSON Schema"),
        ([], "not a JSON object"),
    ],
)
def test_bad_payload_schemas_rejected(schema: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        merge_payload_schemas({"bad": schema})
    assert info.value.peer == "bad"


def test_validate_reports_every_message() -> None:
    schema = merge_payload_schemas(
        {"a": object_schema({"x": {"type": "string"}, "n": {"type": "integer"}}, ["x", "n"])}
    )
    with pytest.raises(MalformedPayloadError) as info:
        validate_payload(schema, {"n": "seven", "extra": True})
    messages = info.value.messages
    assert len(messages) == 3
    assert any("'x' is a required property" in m for m in messages)
    assert any(m.startswith("task.payload.n: 'seven' is not of type 'integer'") for m in messages)
    assert any("'extra' was unexpected" in m for m in messages)
    assert isinstance(info.value, PlugwireError)


def test_filter_payload_keeps_declared_keys() -> None:
    schema = object_schema({"a": {}, "b": {}})
    assert filter_payload(schema, {"a": 1, "c": 3}) == {"a": 1}


def test_malformed_merge_keeps_all_messages() -> None:
    merged = MalformedPayloadError.merge(
        [MalformedPayloadError("one"), MalformedPayloadError("two", "three")]
    )
    assert merged.messages == ("one", "two", "three")
    assert "two" in str(merged)
