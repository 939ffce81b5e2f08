"""A provider binary's fast ``main``: :func:`launch`.

Terraform starts a provider process several times per command (three for a
one-resource ``plan``: schema, validate, plan), so start-up is what a user waits for.
Most of it is importing: Python, asyncio, grpc, protobuf descriptors, the provider's
classes. Those imports allocate a great deal and free almost nothing, so the cyclic
garbage collector's passes during them are wasted work (~15 ms a launch here).
:func:`launch` pauses the collector, imports the provider and the serving code, then
freezes what start-up made (:func:`gc.freeze`: never scanned again), resumes the
collector and serves.

Later launches by the same Terraform process skip the imports altogether: the first
launch starts a fork server (:mod:`plugwire.core.forkserver`) right after importing,
and each later launch hands its stdio, environment and arguments to it and is served by
a child forked from the imported state (a fresh process every time: nothing a launch
did at run time reaches the next). That child is forked ahead and warmed up by a dry
run of serving (:func:`_warm`) while the previous launch serves, and makes its own
certificates (:func:`_prepare_launch`). The server dies with that Terraform process.
Off in debug mode, without Terraform's cookie in the environment, or with
``PLUGWIRE_FORKSERVER=0``.

A launch that imports has its AutoMTLS certificates made meanwhile by a helper process
it forks before importing (:func:`_certs_ahead`, :mod:`plugwire.core._ahead`): the
helper pays cryptography's import and the key generation on another core, and the
launch never loads cryptography.

This module imports nothing heavy itself: a console script pointing at a function
that calls :func:`launch` starts with the collector paused before plugwire, grpc or
the provider load. ``import plugwire.grpc.terraform`` is cheap too (its names load
on first use).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

TYPE_CHECKING = False  # not typing's: a launch never imports typing (~10 ms)

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from plugwire.core._ahead import Ahead

    from .provider import Provider

__all__ = ["launch"]

_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"  # serving.MAGIC_COOKIE_KEY, without importing it


def launch(target: str, *, address: str | None = None, debug: bool | None = None) -> NoReturn:
    """Import ``target`` with the collector paused and serve it; never returns.

    ``target`` is ``"package.module:name"``: a :class:`~plugwire.grpc.terraform.Provider`
    or a callable returning one. ``address`` and ``debug`` are
    :func:`~plugwire.grpc.terraform.serving`'s. A launch the fork server serves
    (see the module docstring) exits from here with the served child's status.

    Raises :class:`ValueError` for a ``target`` without ``:``; the import's own errors
    (ImportError, AttributeError) propagate.
    """
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"launch target must be 'module:name', not {target!r}")
    if debug is None:
        debug = "--debug" in sys.argv[1:]
    server: str | None = None
    certs: Ahead | None = None
    launched = not debug and _COOKIE_KEY in os.environ
    if launched:
        _ignore_interrupts()
        from plugwire.core import forkserver

        server = forkserver.key(target)
        forkserver.delegate(server)  # a later launch: served by a fork, never returns
        certs = _certs_ahead()
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
    if server is not None:
        from plugwire.core import forkserver

        forkserver.start(  # returns here and in children
            server, prepare=_prepare_launch, warm=lambda: _warm(provider), preload=_load_crypto
        )
        _ignore_interrupts()  # a forked child starts with Python's default handler
        if certs is not None and not forkserver.forked():
            _take_certs(certs)
    serve(provider, address=address, debug=debug)


def _ignore_interrupts() -> None:
    """Ignore SIGINT from the first instruction of a launch by Terraform.

    A Ctrl-C in a terminal reaches the whole foreground process group, providers
    included; Terraform handles it and stops its providers itself. go-plugin's
    ``Serve`` ignores interrupts from its start; without this, one that came while a
    launch imports (~0.1 s) would end the provider with a ``KeyboardInterrupt``
    traceback instead. Serving keeps ignoring them (see
    :func:`plugwire.grpc.goplugin.serve_async`).
    """
    import _signal  # type: ignore[import-not-found,unused-ignore]  # signal.py: ~5 ms of enums

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)


def _warm(provider: Provider) -> None:
    """The fork server's standby child, before its launch comes: serve ``provider``
    once to nobody and stop as soon as the announce line is out. A forked child's first
    write to each page it shares with the server costs a page copy: ~1,700 of them for
    a launch's start here, ~15 ms of its ~25 ms, made now instead of while Terraform
    waits (see :func:`plugwire.core.forkserver.start`).

    It runs with the server's environment (the first launch's) but listens in the
    server's :func:`~plugwire.core.forkserver.warm_dir` (no dry run without one), not
    in the host's temp or socket directory; the line goes nowhere, the certificates it
    made are never used again, and the temp dir it set is forgotten. grpc reads its
    ``GRPC_*`` environment variables once per process, here: a launch's own values of
    them (unlike the rest of its environment) do not reach a standby's grpc.
    """
    from plugwire.core import forkserver

    scratch = forkserver.warm_dir()
    if scratch is None or _COOKIE_KEY not in os.environ:
        return
    import asyncio
    import tempfile

    from .serving import _AnnounceCapture, serve_async

    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PLUGIN_UNIX_SOCKET_DIR", "PLUGIN_UNIX_SOCKET_GROUP")
    }

    async def dry_run() -> None:
        stop = asyncio.Event()
        capture = _AnnounceCapture(lambda _line: stop.set())
        await serve_async(provider, environ=environ, stdout=capture, stop=stop)

    tempfile.tempdir = scratch
    try:
        asyncio.run(dry_run())
    finally:
        tempfile.tempdir = None


CERTS_AHEAD_TIMEOUT = 5.0
"""How long a launch waits, once imported, for the certificates its helper makes
(:func:`_certs_ahead`) before it kills the helper and makes them itself."""


def _certs_ahead() -> Ahead | None:
    """Start making this launch's AutoMTLS certificates (its own and the TLS front end's
    private leg) in a helper process (:mod:`plugwire.core._ahead`), when Terraform asks
    for AutoMTLS; :func:`_take_certs` takes them.

    The helper imports cryptography and makes the two keys (~14 ms here) on another
    core while this launch imports (~200 ms), so the launch itself never loads
    cryptography. A fork server forked later does not hold these certificates: the
    launch takes them after :func:`~plugwire.core.forkserver.start` (whose server
    closes the helper's pipe) and each forked child makes its own (:func:`_prepare_launch`).
    """
    if "PLUGIN_CLIENT_CERT" not in os.environ:
        return None
    from plugwire.core import _ahead

    return _ahead.start(_make_certs)


def _make_certs() -> bytes:
    """In the helper: the certificates, as ``marshal`` data (``cert_pem``, ``key_pem``,
    ``cert_der`` of each)."""
    import marshal

    from ..mtls import PLUGIN_CURVE, PRIVATE_LEG_CURVE, SERVER_NAME, _generate

    assert PLUGIN_CURVE == PRIVATE_LEG_CURVE  # one (host, curve) key hands out both
    made = [_generate(SERVER_NAME, PLUGIN_CURVE) for _ in range(2)]
    return marshal.dumps([(c.cert_pem, c.key_pem, c.cert_der) for c in made])


def _take_certs(certs: Ahead) -> None:
    """Hand the helper's certificates to :func:`~plugwire.grpc.mtls.generate_cert`;
    without them (the helper failed or was too slow) serving makes its own."""
    import marshal

    from ..mtls import PLUGIN_CURVE, SERVER_NAME, Certificate, adopt_certs

    data = certs.result(CERTS_AHEAD_TIMEOUT)
    if data is None:
        return
    try:
        made = [Certificate(*fields) for fields in marshal.loads(data)]
    except (EOFError, ValueError, TypeError):
        return
    adopt_certs(SERVER_NAME, PLUGIN_CURVE, made)


def _load_crypto() -> None:
    """In the fork server, before its first fork: what :func:`_warm` and
    :func:`_prepare_launch` will need to make certificates (this launch had its own
    made by a helper, :func:`_certs_ahead`, and never imported it)."""
    if "PLUGIN_CLIENT_CERT" not in os.environ:
        return
    from ..mtls import load_crypto

    load_crypto()


def _prepare_launch() -> None:
    """A forked launch's TLS material, made ahead in the child that will serve it (a
    standby makes it before its launch comes): AutoMTLS's own certificate, and the TLS
    front end's private leg (its certificate and ``ssl`` context)."""
    if "PLUGIN_CLIENT_CERT" not in os.environ:
        return
    from .._tlsproxy import prepare_private_leg
    from ..mtls import PLUGIN_CURVE, SERVER_NAME, prepare_certs

    prepare_certs((SERVER_NAME, PLUGIN_CURVE))
    prepare_private_leg()
