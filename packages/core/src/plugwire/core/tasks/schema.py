"""JSON Schema helpers: object schemas, merging plugins' payload schemas, validation.

Payload and config schemas are plain JSON Schema documents (``dict``), checked with
the ``jsonschema`` library (draft 2020-12). A *payload schema* is an object schema
with ``properties`` and optionally ``required``; plugins share the one task payload,
so their schemas are merged: the union of properties and of required keys, with
``additionalProperties: false``. The same key declared with two different schemas is
a :class:`~plugwire.core.tasks.errors.SchemaConflictError` naming both plugins.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator

from ..errors import ConfigError
from .errors import MalformedPayloadError, SchemaConflictError

__all__ = [
    "JsonSchema",
    "check_schema",
    "filter_payload",
    "merge_payload_schemas",
    "object_schema",
    "schema_errors",
    "validate_payload",
]

#: A JSON Schema document.
JsonSchema = Mapping[str, Any]

# Keywords allowed at the top level of a payload schema. Metadata is dropped on merge
# (like upstream); anything constraining the object as a whole cannot be merged.
_META = frozenset({"$schema", "$id", "title", "description", "$comment", "examples"})
_MERGEABLE = frozenset({"type", "properties", "required", "additionalProperties"}) | _META


def object_schema(
    properties: Mapping[str, JsonSchema] | None = None,
    required: Iterable[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """``{"type": "object", "properties": ..., "required": [...]}``."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties or {})}
    req = list(required)
    if req:
        schema["required"] = req
    schema.update(extra)
    return schema


def check_schema(schema: object, *, owner: str, what: str = "schema") -> dict[str, Any]:
    """Return ``schema`` as a dict if it is a valid JSON Schema, else raise :class:`ConfigError`."""
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"{what} of {owner!r} is not a JSON object",
            peer=owner,
            step=what,
            expected="a JSON Schema object",
            seen=type(schema).__name__,
        )
    try:
        canonical = _canonical(schema)
        problem = _schema_problem(canonical)
    except (RecursionError, ValueError) as exc:  # nested too deep / a cycle
        raise ConfigError(
            f"{what} of {owner!r} cannot be checked: {exc}",
            peer=owner,
            step=what,
            expected="a JSON Schema of sane depth",
            seen=type(exc).__name__,
        ) from None
    if problem is not None:
        raise ConfigError(
            f"{what} of {owner!r} is not a valid JSON Schema: {problem}",
            peer=owner,
            step=what,
            expected="a draft 2020-12 JSON Schema",
            seen=canonical,
        )
    return dict(schema)


# Checking a schema against the meta-schema and compiling a validator are costly;
# schemas are small and few, so both are cached by their canonical JSON text.
@functools.lru_cache(maxsize=1024)
def _schema_problem(canonical: str) -> str | None:
    try:
        Draft202012Validator.check_schema(json.loads(canonical))
    except jsonschema.SchemaError as exc:
        return str(exc.message)
    return None


@functools.lru_cache(maxsize=1024)
def _validator(canonical: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(canonical))


def _check_payload_schema(owner: str, schema: object) -> dict[str, Any]:
    doc = check_schema(schema, owner=owner, what="payload schema")
    if doc.get("type", "object") != "object":
        raise ConfigError(
            f"payload schema of {owner!r} must describe an object",
            peer=owner,
            step="payload schema",
            expected='"type": "object"',
            seen=f'"type": {doc.get("type")!r}',
        )
    unknown = sorted(set(doc) - _MERGEABLE)
    if unknown:
        raise ConfigError(
            f"payload schema of {owner!r} uses keywords that cannot be merged",
            peer=owner,
            step="payload schema",
            expected=f"only {sorted(_MERGEABLE)}",
            seen=unknown,
        )
    props = doc.get("properties", {})
    missing = sorted(set(doc.get("required", [])) - set(props))
    if missing:
        raise ConfigError(
            f"payload schema of {owner!r} requires keys it does not declare",
            peer=owner,
            step="payload schema",
            expected="required keys listed in properties",
            seen=missing,
        )
    return doc


def _canonical(schema: object) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), default=repr)


def merge_payload_schemas(schemas: Mapping[str, JsonSchema]) -> dict[str, Any]:
    """Merge the payload schemas of several owners (plugin name -> schema).

    Returns ``{"type": "object", "properties": <union>, "required": <union>,
    "additionalProperties": false}``. Metadata (title, description) is dropped.

    Raises :class:`ConfigError` for a schema that is invalid or not a plain object
    schema, and :class:`SchemaConflictError` (naming both owners) when one property is
    declared with different schemas.
    """
    properties: dict[str, Any] = {}
    owner_of: dict[str, str] = {}
    required: list[str] = []
    for owner, schema in schemas.items():
        doc = _check_payload_schema(owner, schema)
        for key, sub in doc.get("properties", {}).items():
            if key in properties:
                if _canonical(properties[key]) != _canonical(sub):
                    raise SchemaConflictError(
                        key, owner_of[key], owner, _canonical(properties[key]), _canonical(sub)
                    )
                continue
            properties[key] = sub
            owner_of[key] = owner
        for key in doc.get("required", []):
            if key not in required:
                required.append(key)
    merged: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        merged["required"] = sorted(required)
    return merged


def schema_errors(schema: JsonSchema, instance: object, *, root: str = "task.payload") -> list[str]:
    """Every way ``instance`` violates ``schema``, as sorted ``"<path>: <message>"`` lines."""
    validator = _validator(_canonical(schema))
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: ([str(p) for p in e.absolute_path], e.message),
    )
    lines = []
    for err in errors:
        path = root + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path
        )
        lines.append(f"{path}: {err.message}")
    return lines


def validate_payload(
    schema: JsonSchema, payload: object, *, peer: str | None = None, root: str = "task.payload"
) -> None:
    """Raise :class:`MalformedPayloadError` listing every way ``payload`` fails ``schema``."""
    messages = schema_errors(schema, payload, root=root)
    if messages:
        raise MalformedPayloadError(*messages, peer=peer, step="validate payload")


def filter_payload(schema: JsonSchema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``payload`` whose keys ``schema`` declares in its ``properties``."""
    props = schema.get("properties", {})
    return {k: v for k, v in payload.items() if k in props}
