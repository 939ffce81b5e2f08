"""Task plugins: payload schemas merged from several plugins and payloads validated
against them. Hostile schemas (deep nesting, wrong types, conflicting properties)
give ConfigError/SchemaConflictError; payloads give MalformedPayloadError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran
from support.fuzzing_json import json_values

from plugwire.core.errors import ConfigError
from plugwire.core.tasks.errors import MalformedPayloadError, SchemaConflictError
from plugwire.core.tasks.schema import merge_payload_schemas, validate_payload

pytestmark = pytest.mark.tasks

leaf_schemas = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "object", "array"])}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "number"]), "maxLength": json_values}
    ),
    st.fixed_dictionaries({"pattern": st.sampled_from(["^a", "(", "[", "\\"])}),
    st.fixed_dictionaries({"enum": st.lists(json_values, max_size=3)}),
    json_values,
)
payload_schemas = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("object")},
        optional={
            "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), leaf_schemas),
            "required": st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3),
            "additionalProperties": st.one_of(st.booleans(), json_values),
            "title": json_values,
        },
    ),
    json_values,
)


def _deep(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    cur = doc
    for _ in range(depth):
        cur["properties"] = {"a": {}}
        cur = cur["properties"]["a"]
    return {"type": "object", "properties": {"x": doc}}


@fuzz_settings()
@given(
    st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), payload_schemas, max_size=3), json_values
)
@example({"p1": {"type": "object", "properties": {"a": {"pattern": "("}}}}, {"a": "x"})
def test_merge_and_validate_raise_only_typed_errors(schemas: dict[str, Any], payload: Any) -> None:
    ran("task payload schema merge")
    try:
        merged = merge_payload_schemas(schemas)
    except (ConfigError, SchemaConflictError) as exc:
        assert exc.peer in schemas or isinstance(exc, SchemaConflictError), exc
        return
    assert merged["type"] == "object" and merged["additionalProperties"] is False
    for schema in schemas.values():
        assert set(schema.get("properties", {})) <= set(merged["properties"])
    json.dumps(merged)  # what goes over the wire is JSON
    ran("task payload validation")
    try:
        validate_payload(merged, payload, peer="fuzz")
    except MalformedPayloadError as exc:
        assert exc.peer == "fuzz"


def test_a_schema_nested_beyond_the_recursion_limit_is_a_config_error() -> None:
    # RecursionError (from json.dumps while canonicalising) escaped before the fix
    ran("task payload schema merge")
    with pytest.raises(ConfigError) as info:
        merge_payload_schemas({"p1": _deep(5000)})
    assert info.value.peer == "p1" and info.value.seen == "RecursionError"
