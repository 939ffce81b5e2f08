"""A provider binary's fast ``main``: :func:`launch`.

Terraform starts a provider process several times per command (three for a
one-resource ``plan``: schema, validate, plan), so start-up is what a user waits for.
Most of it is importing: Python, asyncio, grpc, protobuf descriptors, the provider's
classes. Those imports allocate a great deal and free almost nothing, so the cyclic
garbage collector's passes during them are wasted work (~15 ms a launch here).
:func:`launch` pauses the collector, imports the provider and the serving code, then
freezes what start-up made (:func:`gc.freeze`: never scanned again), resumes the
collector and serves.

This module imports nothing heavy itself: a console script pointing at a function
that calls :func:`launch` starts with the collector paused before plugwire, grpc or
the provider load. ``import plugwire.grpc.terraform`` is cheap too (its names load
on first use).
"""

from __future__ import annotations

import gc
import importlib
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .provider import Provider

__all__ = ["launch"]


def launch(target: str, *, address: str | None = None, debug: bool | None = None) -> NoReturn:
    """Import ``target`` with the collector paused and serve it; never returns.

    ``target`` is ``"package.module:name"``: a :class:`~plugwire.grpc.terraform.Provider`
    or a callable returning one. ``address`` and ``debug`` are
    :func:`~plugwire.grpc.terraform.serving`'s.

    Raises :class:`ValueError` for a ``target`` without ``:``; the import's own errors
    (ImportError, AttributeError) propagate.
    """
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"launch target must be 'module:name', not {target!r}")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        found: Any = getattr(importlib.import_module(module_name), name)
        from .provider import Provider
        from .serving import preload, serve

        provider: Provider = found if isinstance(found, Provider) else found()
        preload()
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    serve(provider, address=address, debug=debug)
