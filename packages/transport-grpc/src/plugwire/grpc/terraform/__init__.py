"""plugwire.grpc.terraform: Terraform providers in Python.

A provider is a :class:`Provider` holding :class:`Resource`, :class:`DataSource`,
:class:`EphemeralResource` and :class:`Function` instances, each described by a
typed :class:`Schema`; :func:`serve` makes the process a provider binary Terraform
can launch (protocols 5 and 6, go-plugin's handshake, AutoMTLS)::

    from plugwire.grpc.terraform import Provider, serve
    from plugwire.grpc.terraform.examples.thing import Thing, Echo, Upper

    serve(Provider("example", resources=[Thing()], data_sources=[Echo()], functions=[Upper()]))

Modules, one concept each: :mod:`.schema` (the schema builder), :mod:`.plan` (plan
modifiers and validators), :mod:`.diagnostics`, :mod:`.resource`,
:mod:`.data_source`, :mod:`.ephemeral`, :mod:`.function`, :mod:`.action` (actions),
:mod:`.list_resource` (``terraform query``), :mod:`.state_store`, :mod:`.provider`,
:mod:`.context`, :mod:`.serving` (:func:`serve`), :mod:`.cty` (values and types).
Every name of this package loads on first use; the protocol servers
(``_server5``/``_server6``) and the generated stubs load only when serving, and only
for the negotiated protocol. :func:`launch` is a provider binary's fast ``main``
(the collector paused while it all loads).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from typing import Any

    from . import cty
    from ._launch import launch
    from .action import Action, ActionContext
    from .context import ClientCapabilities, Context, DeferredReason
    from .data_source import DataSource
    from .diagnostics import Diagnostic, Diagnostics, Severity, TerraformError
    from .ephemeral import EphemeralResource
    from .function import Function, FunctionError, Parameter
    from .list_resource import ListContext, ListResource, ListResult
    from .plan import (
        AttributePlan,
        Between,
        Default,
        LengthBetween,
        OneOf,
        PlanModifier,
        RegexMatches,
        RequiresReplace,
        RequiresReplaceIf,
        UseStateForUnknown,
        Validator,
    )
    from .provider import Provider
    from .resource import MoveSource, Resource
    from .schema import (
        NOT_SET,
        Attribute,
        Block,
        IdentityAttribute,
        IdentitySchema,
        NestedAttribute,
        NestedBlock,
        Nesting,
        Schema,
    )
    from .serving import HANDSHAKE, serve, serve_async, serve_config, serve_debug
    from .state_store import LockHeld, LockInfo, LockMismatch, StateStore

# Every name loads on first use (PEP 562): a provider binary imports only what it
# uses, and :func:`launch` can pause the collector before any of it is imported.
_LAZY = {
    "Action": ".action",
    "ActionContext": ".action",
    "Attribute": ".schema",
    "AttributePlan": ".plan",
    "Between": ".plan",
    "Block": ".schema",
    "ClientCapabilities": ".context",
    "Context": ".context",
    "DataSource": ".data_source",
    "Default": ".plan",
    "DeferredReason": ".context",
    "Diagnostic": ".diagnostics",
    "Diagnostics": ".diagnostics",
    "EphemeralResource": ".ephemeral",
    "Function": ".function",
    "FunctionError": ".function",
    "HANDSHAKE": ".serving",
    "IdentityAttribute": ".schema",
    "IdentitySchema": ".schema",
    "LengthBetween": ".plan",
    "ListContext": ".list_resource",
    "ListResource": ".list_resource",
    "ListResult": ".list_resource",
    "LockHeld": ".state_store",
    "LockInfo": ".state_store",
    "LockMismatch": ".state_store",
    "MoveSource": ".resource",
    "NOT_SET": ".schema",
    "NestedAttribute": ".schema",
    "NestedBlock": ".schema",
    "Nesting": ".schema",
    "OneOf": ".plan",
    "Parameter": ".function",
    "PlanModifier": ".plan",
    "Provider": ".provider",
    "RegexMatches": ".plan",
    "RequiresReplace": ".plan",
    "RequiresReplaceIf": ".plan",
    "Resource": ".resource",
    "Schema": ".schema",
    "Severity": ".diagnostics",
    "StateStore": ".state_store",
    "TerraformError": ".diagnostics",
    "UseStateForUnknown": ".plan",
    "Validator": ".plan",
    "launch": "._launch",
    "serve": ".serving",
    "serve_async": ".serving",
    "serve_config": ".serving",
    "serve_debug": ".serving",
}
_SUBMODULES = {"cty"}

__all__ = [
    "HANDSHAKE",
    "NOT_SET",
    "Action",
    "ActionContext",
    "Attribute",
    "AttributePlan",
    "Between",
    "Block",
    "ClientCapabilities",
    "Context",
    "DataSource",
    "Default",
    "DeferredReason",
    "Diagnostic",
    "Diagnostics",
    "EphemeralResource",
    "Function",
    "FunctionError",
    "IdentityAttribute",
    "IdentitySchema",
    "LengthBetween",
    "ListContext",
    "ListResource",
    "ListResult",
    "LockHeld",
    "LockInfo",
    "LockMismatch",
    "MoveSource",
    "NestedAttribute",
    "NestedBlock",
    "Nesting",
    "OneOf",
    "Parameter",
    "PlanModifier",
    "Provider",
    "RegexMatches",
    "RequiresReplace",
    "RequiresReplaceIf",
    "Resource",
    "Schema",
    "Severity",
    "StateStore",
    "TerraformError",
    "UseStateForUnknown",
    "Validator",
    "cty",
    "launch",
    "serve",
    "serve_async",
    "serve_config",
    "serve_debug",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
