"""The plugin side: :func:`serve` makes this process a go-plugin gRPC plugin.

What it does, in go-plugin's order:

1. checks the magic cookie (a friendly message and exit status 1 when it is wrong:
   the program was run by hand, not by its host);
2. negotiates the app protocol version: the highest version of ``versioned_plugins``
   the host lists in ``PLUGIN_PROTOCOL_VERSIONS`` (none in common: the lowest, which
   the host then refuses with "incompatible API version");
3. sets up AutoMTLS when the host sent ``PLUGIN_CLIENT_CERT`` (or uses ``tls``);
4. serves health (``plugin`` SERVING), ``GRPCBroker``, ``GRPCController``,
   ``GRPCStdio`` and the negotiated plugin set on a unix socket in
   ``PLUGIN_UNIX_SOCKET_DIR`` (or on TCP in ``PLUGIN_MIN_PORT..PLUGIN_MAX_PORT``);
5. prints the announce line, then routes ``sys.stdout``/``sys.stderr`` to the host
   through ``GRPCStdio`` (logging goes to the real stderr as hclog JSON);
6. runs until ``GRPCController.Shutdown`` (or SIGTERM), then stops and returns.
   SIGINT is ignored, as go-plugin plugins do, so the host decides when to stop.

When a plugwire host offers ``PLUGWIRE_WIRES`` (see :mod:`.wires`) and ttrpc can run
(no TLS, no broker multiplexing, a unix socket, every plugin of the set serves over
ttrpc, ``ServeConfig.wires`` allows it), step 4 serves the same services over ttrpc
instead, with the protocol field ``ttrpc`` in the announce line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, NoReturn, TextIO

import attrs

import grpc
from plugwire.core import forkserver
from plugwire.core.errors import ConfigError, MagicCookieError, PlugwireError
from plugwire.core.handshake import Handshake

from .._backend import require_asyncio
from .._generated.plugin import grpc_broker_pb2_grpc, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc
from .._listen import SERVER_OPTIONS
from .._wire import Listening, start_server
from ..mtls import PLUGIN_CURVE, TLSConfig, check_pem, generate_cert
from .announce import Announce
from .broker import BrokerServicer, GrpcBroker
from .controller import ControllerServicer
from .env import PluginEnv
from .health import add_health
from .logs import configure_plugin_logging
from .plugin import GrpcPlugin
from .stdio import StdioCapture, StdioServicer
from .wires import GRPC, KNOWN_WIRES, TTRPC, add_core_services, ttrpc_available

__all__ = ["ServeConfig", "negotiate_plugin_set", "serve", "serve_async"]

_log = logging.getLogger("plugwire.grpc.goplugin.server")

STOP_GRACE = 0.0
"""Seconds in-flight calls get once the plugin stops (after ``GRPCController.Shutdown``
has been answered, or SIGTERM): none. go-plugin's Go server stops at once
(``grpc.Server.Stop``); a host has finished its calls when it asks for the shutdown,
and what it still holds open (the broker stream, its end of the stdio stream) would
otherwise hold the process for the whole grace: the host waits for the exit on every
launch (Terraform: three launches per plan)."""

STDIO_SEND_TIMEOUT = 0.25
"""Seconds a plugin about to exit (after a Shutdown) waits for its ``StreamStdio`` to
send what the plugin wrote (the host keeps that stream open; go-plugin's always)."""

COOKIE_MESSAGE = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


def _plugin_map(value: Mapping[str, GrpcPlugin]) -> dict[str, GrpcPlugin]:
    return dict(value)


def _versioned(value: Mapping[int, Mapping[str, GrpcPlugin]]) -> dict[int, dict[str, GrpcPlugin]]:
    return {int(k): dict(v) for k, v in value.items()}


def _wires(value: Sequence[str]) -> tuple[str, ...]:
    wires = tuple(value)
    if not wires or isinstance(value, str) or any(w not in KNOWN_WIRES for w in wires):
        raise ConfigError(
            "bad wires",
            step="serve config",
            expected=f"a non-empty tuple of {list(KNOWN_WIRES)}",
            seen=value,
        )
    return wires


@attrs.frozen
class ServeConfig:
    """How :func:`serve` runs the plugin.

    ``handshake``: cookie and supported versions. ``plugins`` are served at every
    version of ``handshake.protocol_versions`` unless ``versioned_plugins`` maps
    versions to plugin sets. ``tls``: a user TLS config instead of AutoMTLS (its
    certificate is not put in the announce line, as in go-plugin). ``network``:
    ``unix`` (go-plugin's choice on every OS but Windows) or ``tcp``.
    ``configure_logging``: install the hclog JSON handler at ``log_level``.
    ``sync_stdio``: route ``sys.stdout``/``sys.stderr`` to the host after the
    handshake. ``wires``: the wires this plugin agrees to when a plugwire host offers
    them (``("grpc",)`` refuses ttrpc); Go hosts always get gRPC.
    """

    handshake: Handshake
    plugins: Mapping[str, GrpcPlugin] = attrs.field(factory=dict, converter=_plugin_map)
    versioned_plugins: Mapping[int, Mapping[str, GrpcPlugin]] = attrs.field(
        factory=dict, converter=_versioned
    )
    tls: TLSConfig | None = None
    network: str = "unix"
    server_options: Sequence[tuple[str, Any]] = ()
    configure_logging: bool = True
    log_level: int = logging.DEBUG
    sync_stdio: bool = True
    wires: tuple[str, ...] = attrs.field(default=(TTRPC, GRPC), converter=_wires)

    def plugin_sets(self) -> dict[int, dict[str, GrpcPlugin]]:
        """Version -> plugin set, as served."""
        sets = {v: dict(p) for v, p in self.versioned_plugins.items()}
        if self.plugins:
            for version in self.handshake.protocol_versions:
                sets.setdefault(version, dict(self.plugins))
        if not sets:
            raise ConfigError(
                "no plugins to serve", step="serve", expected="plugins or versioned_plugins"
            )
        return sets


def negotiate_plugin_set(
    sets: Mapping[int, Mapping[str, GrpcPlugin]], offered_versions: Iterable[int]
) -> tuple[int, Mapping[str, GrpcPlugin]]:
    """go-plugin's ``protocolVersion``: the highest version the host also lists.

    With none in common it returns the lowest version; the host then fails the
    handshake with "incompatible API version" naming both lists.
    """
    offered = set(offered_versions)
    for version in sorted(sets, reverse=True):
        if version in offered:
            return version, sets[version]
    lowest = min(sets)
    _log.warning(
        "no common protocol version: host offers %s, plugin supports %s; answering %d",
        sorted(offered),
        sorted(sets),
        lowest,
    )
    return lowest, sets[lowest]


def serve(config: ServeConfig | None = None, /, **kwargs: Any) -> NoReturn:
    """Serve the plugin (see the module docstring) and exit the process when done.

    ``serve(ServeConfig(...))`` or ``serve(handshake=..., plugins=...)``. Exit status:
    0 after a shutdown, 1 when the cookie is wrong or start-up failed.
    """
    cfg = config if config is not None else ServeConfig(**kwargs)
    _exit_process(run_then_exit(serve_async(cfg, exiting=True)))


def run_then_exit(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` (a serving coroutine) on a new event loop and return its result,
    leaving the loop as it is: the caller ends the process next (:func:`_exit_process`).

    ``asyncio.run`` would first cancel and wait for every task still there (grpc's,
    the TLS front end's), shut down the default executor and close the loop; the
    process exit ends all of that anyway, as a Go plugin's ``os.Exit`` ends its
    goroutines (the host waits for that exit: for Terraform, once per provider launch).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(main)


def _exit_process(code: int) -> NoReturn:
    """End a plugin process that has served with ``code``: stdout and stderr flushed,
    exit handlers run, no interpreter teardown (see
    :func:`plugwire.core._fastexit.exit_process`; the host waits for the exit: for
    Terraform, once per provider launch)."""
    from plugwire.core._fastexit import exit_process

    exit_process(code)


async def serve_async(
    config: ServeConfig,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stop: asyncio.Event | None = None,
    exiting: bool = False,
) -> int:
    """The body of :func:`serve` on a running asyncio loop; returns the exit status.

    ``environ`` defaults to ``os.environ`` and ``stdout`` (where the announce line
    goes) to ``sys.stdout``; setting ``stop`` stops the plugin from the outside.

    ``exiting``: the process ends as soon as this returns (:func:`serve` sets it). Once
    stopped, the plugin then removes its socket files and returns at once, leaving the
    gRPC server and its connections to the exit, as go-plugin's ``Shutdown`` stops its
    server without waiting for running calls; otherwise it stops the server in order
    (running calls cancelled) and closes every connection before returning.
    """
    require_asyncio("plugwire.grpc.goplugin.serve")
    env = os.environ if environ is None else environ
    out = stdout if stdout is not None else sys.stdout
    try:
        config.handshake.check_cookie(env)
    except MagicCookieError:
        sys.stderr.write(COOKIE_MESSAGE)
        sys.stderr.flush()
        return 1
    # Until the announce line is out, nothing but it may reach stdout.
    saved_stdout = sys.stdout
    if stdout is None:
        sys.stdout = sys.stderr
    stop = stop or asyncio.Event()
    try:
        plugin_env = PluginEnv.from_env(env)
        # From before the socket exists to after it is gone: a SIGTERM that comes
        # while starting (even just after the announce line) stops the plugin
        # through the same clean-up as a Shutdown; interrupts are ignored throughout.
        with _signals(stop, restore=not exiting):
            return await _serve(config, plugin_env, out, stop, exiting=exiting)
    except PlugwireError as exc:
        _log.error("plugin init error: %s", exc)
        return 1
    finally:
        if sys.stdout is sys.stderr and stdout is None:
            sys.stdout = saved_stdout


async def _serve(
    config: ServeConfig, env: PluginEnv, out: TextIO, stop: asyncio.Event, *, exiting: bool
) -> int:
    if config.configure_logging:
        configure_plugin_logging(config.log_level)
    if forkserver.forked():
        _log.debug("launch served by a fork server child: pid=%d", os.getpid())
    version, plugin_set = negotiate_plugin_set(config.plugin_sets(), env.protocol_versions)

    tls = config.tls
    server_cert: bytes | None = None
    client_pem = env.client_cert
    if tls is None and client_pem:
        _log.debug("configuring server automatic mTLS")
        peer = check_pem(client_pem.encode(), what="PLUGIN_CLIENT_CERT")
        own = generate_cert(curve=PLUGIN_CURVE)
        tls = TLSConfig.mutual(own, peer)
        server_cert = own.cert_der

    # go-plugin answers the 7th field whenever the variable is set, and multiplexes
    # when it parses as a true Go bool.
    multiplex_asked = env.multiplex_asked
    muxer = None
    if env.multiplex:
        from . import _mux

        muxer = _mux.server_muxer(tls)

    wire = choose_wire(config, env, plugin_set, tls=tls)
    if wire == TTRPC:
        return await _serve_ttrpc(config, env, version, plugin_set, out, stop)

    server = grpc.aio.server(options=[*SERVER_OPTIONS, *config.server_options])
    broker = GrpcBroker(tls=tls, listen=env.listen, muxer=muxer, peer="host")
    capture = StdioCapture()
    await add_health(server)
    grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(BrokerServicer(broker), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(ControllerServicer(stop), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(StdioServicer(capture), server)
    for name, plugin in plugin_set.items():
        try:
            plugin.grpc_server(broker, server)
        except PlugwireError:
            raise
        except Exception as exc:
            raise ConfigError(f"error registering {name!r}", step="serve", seen=repr(exc)) from exc

    listening: Listening | None = None
    try:
        if muxer is not None:
            listening = await muxer.listen(server, env.listen, config.network)
        else:
            listening = await start_server(
                server, network=config.network, listen=env.listen, tls=tls
            )
        address = listening.address
        _log.debug("plugin address", extra={"network": address.network, "address": address.address})
        line = Announce(
            app_version=version,
            network=address.network,
            address=address.address,
            protocol="grpc",
            server_cert=server_cert,
            # Like go-plugin: "true" (supported) whenever the host set the variable.
            multiplex=True if multiplex_asked else None,
        ).format()
        out.write(line + "\n")
        out.flush()
        if config.sync_stdio:
            capture.install()
        try:
            await stop.wait()
        finally:
            capture.restore()
            capture.close()  # StreamStdio ends with OK before the server stops
        _log.debug("plugin shutting down")
        if exiting:  # what the plugin wrote reaches the host before the process ends
            await capture.wait_sent(STDIO_SEND_TIMEOUT)
        return 0
    finally:
        await broker.aclose()
        if exiting:
            if listening is not None:
                listening.remove_files()
        else:
            await server.stop(STOP_GRACE)
            if listening is not None:
                await listening.aclose()


def choose_wire(
    config: ServeConfig,
    env: PluginEnv,
    plugin_set: Mapping[str, GrpcPlugin],
    *,
    tls: TLSConfig | None,
) -> str:
    """The wire to serve: the host's most preferred offered wire this plugin can run;
    ``grpc`` without an offer (a Go host) or when nothing else fits."""
    for wire in env.wires:
        if wire == GRPC:
            return GRPC
        if wire == TTRPC and TTRPC in config.wires:
            why = _ttrpc_obstacle(config, env, plugin_set, tls=tls)
            if why is None:
                return TTRPC
            _log.debug("host offered ttrpc; answering grpc: %s", why)
    return GRPC


def _ttrpc_obstacle(
    config: ServeConfig,
    env: PluginEnv,
    plugin_set: Mapping[str, GrpcPlugin],
    *,
    tls: TLSConfig | None,
) -> str | None:
    if not ttrpc_available():
        return "plugwire-ttrpc is not installed"
    if tls is not None:
        return "TLS is on (AutoMTLS or ServeConfig.tls)"
    if env.multiplex_asked:
        return "the host asked for broker multiplexing"
    if config.network != "unix":
        return "ttrpc is served on unix sockets only"
    for name, plugin in plugin_set.items():
        if TTRPC not in plugin.wires:
            return f"plugin {name!r} cannot be served over ttrpc"
    return None


async def _serve_ttrpc(
    config: ServeConfig,
    env: PluginEnv,
    version: int,
    plugin_set: Mapping[str, GrpcPlugin],
    out: TextIO,
    stop: asyncio.Event,
) -> int:
    """Step 4-6 over ttrpc: one unix socket carries the plugin's services, health,
    controller, stdio and the broker's control stream (brokered connections stay gRPC)."""
    from plugwire.core.transport import Address
    from plugwire.ttrpc import Server, require_same_user

    from .._listen import fix_socket_mode, new_socket_path

    # The socket lives in the host's private directory; without a shared group only
    # this user may connect (SO_PEERCRED), as the directory's 0700 already implies.
    server = Server(handshake=None if env.listen.socket_group else require_same_user())
    broker = GrpcBroker(tls=None, listen=env.listen, muxer=None, peer="host")
    capture = StdioCapture()
    add_core_services(
        server, broker=broker, controller=ControllerServicer(stop), stdio=StdioServicer(capture)
    )
    for name, plugin in plugin_set.items():
        try:
            plugin.ttrpc_server(broker, server)
        except PlugwireError:
            raise
        except Exception as exc:
            raise ConfigError(f"error registering {name!r}", step="serve", seen=repr(exc)) from exc
    path = new_socket_path(env.listen)
    try:
        async with server.listen(Address("unix", path), grace=0.5) as bound:
            fix_socket_mode(bound, env.listen)
            _log.debug("plugin address network=unix address=%s wire=ttrpc", bound.address)
            line = Announce(
                app_version=version, network="unix", address=bound.address, protocol=TTRPC
            ).format()
            out.write(line + "\n")
            out.flush()
            if config.sync_stdio:
                capture.install()
            try:
                await stop.wait()
            finally:
                capture.restore()
                capture.close()
            _log.debug("plugin shutting down")
        return 0
    finally:
        await broker.aclose()


@contextlib.contextmanager
def _signals(stop: asyncio.Event, *, restore: bool = True) -> Any:
    """SIGTERM sets ``stop``, SIGINT is logged and ignored, until the block ends; then
    the handlers are removed, unless ``restore`` is false (the process ends next: each
    removal costs asyncio a pass over every signal's enum, ~0.5 ms)."""
    loop = asyncio.get_running_loop()
    installed = []
    try:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            installed.append(signal.SIGTERM)
            loop.add_signal_handler(
                signal.SIGINT, _log.debug, "plugin received interrupt signal, ignoring"
            )
            installed.append(signal.SIGINT)
        yield
    finally:
        for sig in installed if restore else ():
            loop.remove_signal_handler(sig)
