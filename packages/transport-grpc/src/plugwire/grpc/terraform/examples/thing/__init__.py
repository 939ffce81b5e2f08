"""The example provider ``example``: what a one-resource provider looks like.

It mirrors the Go terraform-plugin-framework provider the benchmarks compare with:

- resource ``example_thing`` (schema version 1): ``id`` computed (kept once known),
  ``name`` required (changing it replaces the thing), ``size`` optional number
  (default 1), ``tags`` optional map of strings, ``secret`` sensitive optional
  string, ``created`` computed and unknown until apply, ``password_wo`` write-only
  (reaches create/update through ``ctx.config``, never the plan or state; at least 8
  characters), ``label`` deprecated. Its identity is ``{name}``: import by id
  ``thing-<name>`` or by ``identity = { name = ... }``. The schema is at version 1:
  state of version 0 (``size`` was a string) is upgraded.
- data source ``example_echo``: ``output`` = ``input``.
- ephemeral resource ``example_token``: ``token`` made from ``name``, never stored.
- function ``upper(string)``.

The provider's optional ``endpoint`` is never used, except that when it is unknown
(configured from a value known only after apply) and Terraform allows deferral, the
provider defers every resource and data source (``ctx.defer``).

Nothing is stored outside Terraform's state. ``EXAMPLE_APPLY_DELAY`` (seconds) makes
create and update sleep first, to show StopProvider/Ctrl-C cancelling an apply.

Run as ``python -m plugwire.grpc.terraform.examples.thing`` or the
``terraform-provider-example`` console script (``--debug`` for debug mode): both go
through :func:`main`, which launches the provider with :func:`~plugwire.grpc.terraform.launch`
(the classes live in :mod:`._provider` and load on first use).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from ._provider import Echo, ExampleProvider, Thing, Token, Upper, provider

__all__ = ["Echo", "ExampleProvider", "Thing", "Token", "Upper", "main", "provider"]

ADDRESS = "registry.terraform.io/plugwire/example"


def main() -> NoReturn:
    """The ``terraform-provider-example`` console script."""
    from plugwire.grpc.terraform._launch import launch

    launch(f"{__name__}._provider:provider", address=ADDRESS)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("._provider", __name__), name)
    globals()[name] = value
    return value
