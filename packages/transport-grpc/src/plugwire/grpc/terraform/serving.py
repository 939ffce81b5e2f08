"""Serving a provider: :func:`serve` is a provider binary's ``main``.

Terraform launches the binary with its magic cookie and ``PLUGIN_PROTOCOL_VERSIONS``
(5, 6 or both); :func:`serve` answers through plugwire.grpc.goplugin's server like
any go-plugin plugin (AutoMTLS when ``PLUGIN_CLIENT_CERT`` is set, GRPCController,
GRPCStdio, GRPCBroker) and serves the provider as ``tfplugin5.Provider`` or
``tfplugin6.Provider``, whichever was negotiated: only that protocol's generated
modules are loaded.

Debug mode (``serve(provider, debug=True)`` or the ``--debug`` flag) runs the provider
unmanaged, like terraform-plugin-go's managed debug: no cookie needed, it prints a
``TF_REATTACH_PROVIDERS='{...}'`` line to give to Terraform and runs until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from plugwire.core.handshake import Handshake

if TYPE_CHECKING:
    import grpc

    from ..goplugin.broker import GrpcBroker
    from ..goplugin.server import ServeConfig
    from .provider import Provider

__all__ = [
    "HANDSHAKE",
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "preload",
    "serve",
    "serve_async",
    "serve_config",
    "serve_debug",
]

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
HANDSHAKE = Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, (5, 6))
"""Terraform's go-plugin handshake: its cookie, protocol versions 5 and 6."""

PLUGIN_NAME = "provider"
"""The go-plugin plugin name Terraform dispenses."""


def _plugin(provider: Provider, version: int) -> Any:
    from ..goplugin.plugin import GrpcPlugin

    class TerraformProviderPlugin(GrpcPlugin):
        def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
            if version == 5:
                from . import _server5 as module
            else:
                from . import _server6 as module  # type: ignore[no-redef]
            module.register(provider, server)

    return TerraformProviderPlugin()


def serve_config(provider: Provider, *, protocol_versions: tuple[int, ...] = (5, 6)) -> ServeConfig:
    """The goplugin :class:`~plugwire.grpc.goplugin.ServeConfig` serving ``provider``."""
    from ..goplugin.server import ServeConfig

    return ServeConfig(
        handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, protocol_versions),
        versioned_plugins={v: {PLUGIN_NAME: _plugin(provider, v)} for v in protocol_versions},
    )


async def serve_async(
    provider: Provider,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stop: asyncio.Event | None = None,
    protocol_versions: tuple[int, ...] = (5, 6),
    exiting: bool = False,
) -> int:
    """Serve ``provider`` on the running loop until Terraform shuts it down; the exit
    status. ``exiting``: the process ends next (see
    :func:`plugwire.grpc.goplugin.serve_async`; :func:`serve` sets it)."""
    from ..goplugin.server import serve_async as goplugin_serve

    config = serve_config(provider, protocol_versions=protocol_versions)
    return await goplugin_serve(config, environ=environ, stdout=stdout, stop=stop, exiting=exiting)


def preload(environ: Mapping[str, str] | None = None) -> None:
    """Import what serving will: grpc, go-plugin's services and the protocol module
    Terraform will pick (the highest of ``PLUGIN_PROTOCOL_VERSIONS`` plugwire speaks).
    :func:`~plugwire.grpc.terraform.launch` calls it with the collector paused."""
    env = os.environ if environ is None else environ
    from ..goplugin import server as _server  # noqa: F401

    asked = {v.strip() for v in env.get("PLUGIN_PROTOCOL_VERSIONS", "6").split(",")}
    if "6" in asked or "5" not in asked:
        from . import _server6 as _protocol
    else:
        from . import _server5 as _protocol  # type: ignore[no-redef]  # noqa: F401


def serve(provider: Provider, *, debug: bool | None = None, address: str | None = None) -> NoReturn:
    """A provider binary's main: serve ``provider`` and exit.

    ``debug``: run unmanaged and print ``TF_REATTACH_PROVIDERS`` (see
    :func:`serve_debug`); None (default) means "when ``--debug`` is on the command
    line". ``address``: the provider's source address for the reattach line
    (default ``registry.terraform.io/plugwire/<name>``).
    """
    if debug is None:
        debug = "--debug" in sys.argv[1:]
    if debug:
        code = asyncio.run(serve_debug(provider, address=address))
    else:
        from ..goplugin.server import run_then_exit

        code = run_then_exit(serve_async(provider, exiting=True))
    from ..goplugin.server import _exit_process

    _exit_process(code)  # without the interpreter's final collections: Terraform waits


class _AnnounceCapture(io.StringIO):
    """Takes the announce line :func:`serve_async` prints in debug mode."""

    def __init__(self, on_line: Any) -> None:
        super().__init__()
        self._on_line = on_line

    def write(self, text: str) -> int:
        n = super().write(text)
        if self._on_line is not None and "\n" in self.getvalue():
            callback, self._on_line = self._on_line, None
            callback(self.getvalue().split("\n", 1)[0])
        return n


async def serve_debug(
    provider: Provider,
    *,
    address: str | None = None,
    protocol_version: int = 6,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run ``provider`` unmanaged (for a debugger) and print how Terraform attaches.

    Like terraform-plugin-go's managed debug: the provider listens on a unix socket
    without TLS, ``out`` (stdout) gets the ``TF_REATTACH_PROVIDERS='{...}'`` line
    (reattach JSON of :class:`~plugwire.grpc.goplugin.ReattachConfig`, ``Test``
    true so Terraform never kills it), and it serves until Ctrl-C or ``stop``.
    """
    from plugwire.core.transport import Address

    from ..goplugin.announce import parse_announce
    from ..goplugin.config import ReattachConfig

    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else asyncio.Event()
    source = address or f"registry.terraform.io/plugwire/{provider.name}"
    loop = asyncio.get_running_loop()

    def announced(line: str) -> None:
        ann = parse_announce(line, versions=(protocol_version,))
        config = ReattachConfig(
            protocol_version=ann.app_version,
            address=Address(ann.network, ann.address),  # type: ignore[arg-type]
            pid=os.getpid(),
            test=True,
        )
        reattach = {source: config.to_json()}
        text = (
            "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS "
            "environment variable with the following:\n\n"
            f"\tTF_REATTACH_PROVIDERS='{json.dumps(reattach, separators=(',', ':'))}'\n\n"
        )
        # After goplugin's signal set-up (it runs in this same step): Ctrl-C stops a
        # debug provider; the line is printed once that holds.
        loop.call_soon(_ready, loop, stop, out, text)

    env = {
        MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
        "PLUGIN_PROTOCOL_VERSIONS": str(protocol_version),
    }
    for key in ("PLUGIN_UNIX_SOCKET_DIR", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    from ..goplugin.server import serve_async as goplugin_serve

    config = serve_config(provider, protocol_versions=(protocol_version,))
    config = _evolve(config, sync_stdio=False)
    return await goplugin_serve(config, environ=env, stdout=_AnnounceCapture(announced), stop=stop)


def _evolve(config: ServeConfig, **changes: Any) -> ServeConfig:
    import attrs

    return attrs.evolve(config, **changes)


def _ready(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, out: TextIO, text: str) -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    out.write(text)
    out.flush()
