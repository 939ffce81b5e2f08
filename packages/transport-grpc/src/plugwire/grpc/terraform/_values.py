"""Walks over values along a schema: validation, planning steps, normalisation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import cty
from .cty import UNKNOWN, AttributePath, Unknown
from .diagnostics import Diagnostics
from .plan import AttributePlan
from .schema import NOT_SET, Attribute, NestedAttribute, NestedBlock, Nesting

Node = Attribute | NestedAttribute | NestedBlock
Visit = Callable[[Node, AttributePath, Any, Any, Any], Any]


def _children(node: NestedBlock | NestedAttribute) -> Iterator[tuple[str, Node]]:
    yield from node.attributes.items()
    if isinstance(node, NestedBlock):
        yield from node.blocks.items()


def _get(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, Unknown):
        return UNKNOWN
    return None


def _item(value: Any, key: Any) -> Any:
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, list) and isinstance(key, int):
        return value[key] if key < len(value) else None
    if isinstance(value, dict) and isinstance(key, str):
        return value.get(key)
    return None


def transform(
    block: NestedBlock | NestedAttribute,
    config: Any,
    prior: Any,
    planned: Any,
    path: AttributePath,
    visit: Visit,
) -> Any:
    """Call ``visit(node, path, config, prior, planned)`` on every attribute and nested
    block (parents first) and return ``planned`` with the values ``visit`` returned."""
    if not isinstance(planned, dict):
        return planned
    out = dict(planned)
    for name, node in _children(block):
        sub = path.attr(name)
        c, s = _get(config, name), _get(prior, name)
        value = visit(node, sub, c, s, out.get(name))
        if isinstance(node, NestedBlock | NestedAttribute) and value is not None:
            value = _each(node, c, s, value, sub, visit)
        out[name] = value
    return out


def _each(
    node: NestedBlock | NestedAttribute,
    config: Any,
    prior: Any,
    value: Any,
    path: AttributePath,
    visit: Visit,
) -> Any:
    if isinstance(value, Unknown):
        return value
    if node.nesting in (Nesting.SINGLE, Nesting.GROUP):
        return transform(node, config, prior, value, path, visit)
    if isinstance(value, list):
        return [
            transform(node, _item(config, i), _item(prior, i), v, path.index(i), visit)
            for i, v in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            k: transform(node, _item(config, k), _item(prior, k), v, path.key(k), visit)
            for k, v in value.items()
        }
    return value


def validate(block: NestedBlock, config: Any, diagnostics: Diagnostics) -> None:
    """Run every attribute's validators on the known, non-null values of ``config``."""

    def visit(node: Node, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if isinstance(node, NestedBlock) or value is None or isinstance(value, Unknown):
            return value
        for validator in node.validators:
            validator.validate(value, path, diagnostics)
        return value

    transform(block, config, None, config, AttributePath(), visit)


def apply_defaults(block: NestedBlock, config: Any, planned: Any) -> Any:
    def visit(node: Node, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if isinstance(node, NestedBlock) or c is not None or node.default is NOT_SET:
            return value
        return node.default

    return transform(block, config, None, planned, AttributePath(), visit)


def mark_computed_unknown(block: NestedBlock, config: Any, planned: Any) -> Any:
    def visit(node: Node, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if isinstance(node, NestedBlock) or not node.computed or c is not None:
            return value
        if node.default is not NOT_SET:
            return value
        return UNKNOWN

    return transform(block, config, None, planned, AttributePath(), visit)


def run_plan_modifiers(
    block: NestedBlock,
    config: Any,
    prior: Any,
    planned: Any,
    replace: list[AttributePath],
    diagnostics: Diagnostics,
) -> Any:
    creating = prior is None

    def visit(node: Node, path: AttributePath, c: Any, s: Any, value: Any) -> Any:
        if isinstance(node, NestedBlock) or not node.plan_modifiers:
            return value
        req = AttributePlan(path=path, config=c, state=s, plan=value, creating=creating)
        for modifier in node.plan_modifiers:
            modifier.modify(req)
        if req.requires_replace:
            replace.append(path)
        diagnostics.extend(req.diagnostics)
        return req.plan

    return transform(block, config, prior, planned, AttributePath(), visit)


def find_unknown(value: Any, path: AttributePath | None = None) -> AttributePath | None:
    """The path of the first unknown value in ``value``, or None."""
    path = path if path is not None else AttributePath()
    if isinstance(value, Unknown):
        return path
    if isinstance(value, dict):
        for k, v in value.items():
            found = find_unknown(v, path.attr(k) if isinstance(k, str) else path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = find_unknown(v, path.index(i))
            if found is not None:
                return found
    return None


def normalize(value: Any, type_: cty.Type) -> Any:
    """Objects get every attribute of their type (missing ones null) and only those.

    For states written by older code (upgrade) and states returned by provider code.
    """
    if value is None or isinstance(value, Unknown):
        return value
    if isinstance(type_, cty.Object) and isinstance(value, Mapping):
        return {k: normalize(value.get(k), t) for k, t in type_.attributes.items()}
    if isinstance(type_, cty.List | cty.Set) and isinstance(value, list | tuple | set | frozenset):
        return [normalize(v, type_.element) for v in value]
    if isinstance(type_, cty.Map) and isinstance(value, Mapping):
        return {k: normalize(v, type_.element) for k, v in value.items()}
    return value


def null_write_only(block: NestedBlock, value: Any) -> Any:
    """``value`` with every write-only attribute null (plans and states never hold them)."""

    def visit(node: Node, path: AttributePath, c: Any, _s: Any, v: Any) -> Any:
        if isinstance(node, NestedBlock) or not node.write_only:
            return v
        return None

    return transform(block, None, None, value, AttributePath(), visit)


def config_warnings(
    block: NestedBlock, config: Any, diagnostics: Diagnostics, *, write_only_allowed: bool
) -> None:
    """Deprecation warnings for configured (known, non-null) deprecated attributes and
    blocks, and errors for write-only values when the client does not allow them."""

    def visit(node: Node, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(node, NestedBlock) and node.write_only and not write_only_allowed:
            diagnostics.error(
                "Write-only attribute not allowed",
                f"{path} is write-only and has a value, but this Terraform does not allow "
                "write-only attributes (client capability write_only_attributes_allowed "
                "is false; Terraform 1.11 and later allow them)",
                path,
            )
        if node.deprecation and not isinstance(value, Unknown):
            diagnostics.warning("Attribute Deprecated", node.deprecation, path)
        return value

    transform(block, config, None, config, AttributePath(), visit)


def generated_config(block: NestedBlock, state: Any) -> Any:
    """terraform-plugin-framework's default configuration for an imported state."""

    def visit(node: Node, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if isinstance(node, NestedBlock) or value is None:
            return value
        if node.deprecation or node.write_only or (node.computed and not node.optional):
            return None
        if len(path.steps) == 1 and str(path) == "id" and node.computed:
            return None
        if (
            node.optional
            and value == ""
            and isinstance(node, Attribute)
            and (node.type == cty.String)
        ):
            return None
        return value

    return transform(block, None, None, state, AttributePath(), visit)
