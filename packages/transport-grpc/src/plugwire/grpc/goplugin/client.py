"""The host side: :class:`PluginClient` launches (or reattaches to) a go-plugin gRPC plugin.

What :meth:`PluginClient.start` does, in go-plugin's order:

1. with :class:`SecureConfig`, checks the plugin binary's checksum before launch;
2. with ``auto_mtls``, makes a throwaway certificate and passes it in
   ``PLUGIN_CLIENT_CERT``;
3. launches the command with a clean environment: the magic cookie,
   ``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT``, ``PLUGIN_PROTOCOL_VERSIONS``, a private
   ``PLUGIN_UNIX_SOCKET_DIR`` (and ``PLUGIN_UNIX_SOCKET_GROUP``),
   ``PLUGIN_MULTIPLEX_GRPC`` when asked, plus ``env``; stderr lines become
   ``logging`` records on ``plugwire.plugin.<name>`` (hclog JSON keeps levels and
   fields);
4. waits up to ``start_timeout`` for the announce line and checks it
   (:func:`~plugwire.grpc.goplugin.announce.parse_announce` raises precise errors);
5. dials (through mTLS when set up), opens the broker stream and the stdio stream
   (what the plugin prints reaches ``sync_stdout``/``sync_stderr``).

Between plugwire peers the wire is negotiated in step 3/4 (:mod:`.wires`): the host
offers ``PLUGWIRE_WIRES=ttrpc,grpc`` and a plugwire plugin may answer ``ttrpc`` in the
announce line; :attr:`PluginClient.protocol` shows the outcome and ``dispense`` gives a
stub with the same call interface on either wire. ``ClientConfig(wires=...)`` forces or
refuses a wire.

:meth:`PluginClient.dispense` returns the plugin's client object, :meth:`PluginClient.ping`
checks health, :meth:`PluginClient.aclose` stops it with core's shutdown sequence
(:mod:`plugwire.core.shutdown`): broker closed and ``GRPCController.Shutdown`` (the
graceful step), ``kill_grace`` (2 s), SIGTERM, SIGKILL. Unary calls of dispensed
stubs raise :class:`~plugwire.core.errors.RemoteError`, or
:class:`~plugwire.core.errors.PluginExitedError` when the plugin died.

A :class:`PluginClient` is a :class:`plugwire.core.BasePluginHandle`: a
:class:`plugwire.core.Host` launches it (``await host.launch(PluginClient(config))``),
and every started client is in core's managed registry (:func:`cleanup_clients`,
killed at interpreter exit). Its configuration lives in :mod:`.config`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import time
from typing import Any

import anyio
import anyio.abc

import grpc
from plugwire.core.controller import Controller
from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    PluginExitedError,
    PluginStartError,
    PlugwireError,
)
from plugwire.core.handle import BasePluginHandle
from plugwire.core.managed import cleanup_plugins
from plugwire.core.process import PluginProcess
from plugwire.core.transport import Address

from .._backend import require_asyncio
from .._drain import drain_tasks
from .._errors_map import MappedChannel
from .._listen import ListenConfig
from .._wire import open_channel
from ..mtls import Certificate, TLSConfig
from ._call_errors import map_call_error
from ._launch import (
    START_CHECK_TIMEOUT,
    check_answers,
    check_binary,
    child_env,
    client_name,
    first_line,
    resolve_command,
    run_process,
    tls_for,
)
from ._reattach import kill_pid, pid_alive, reattach_plugins, watch_pid
from .announce import Announce, parse_announce
from .broker import GrpcBroker, capability_interceptor, open_client_stream
from .config import BROKER, ClientConfig, ReattachConfig, SecureConfig
from .controller import shutdown as controller_shutdown
from .health import GRPC_SERVICE_NAME, check_health
from .plugin import GrpcPlugin
from .stdio import pump_stdio
from .wires import (
    GRPC,
    TTRPC,
    MappedStub,
    TtrpcConnection,
    WireMismatchError,
    host_offer,
)

__all__ = ["ClientConfig", "PluginClient", "ReattachConfig", "SecureConfig", "cleanup_clients"]

_log = logging.getLogger("plugwire.grpc.goplugin.client")

STDIO_DRAIN_TIMEOUT = 1.0
"""After a ``Shutdown`` the plugin took, how long the host lets the plugin's stdio stream
end by itself before it closes the connection (see :meth:`PluginClient._graceful_stop`)."""


def _within_scope(seconds: float, margin: float = 0.1) -> float:
    """``seconds``, cut so that it ends ``margin`` before the current cancel scope's
    deadline (if it has one); may come out zero or negative."""
    deadline = anyio.current_effective_deadline()
    if math.isfinite(deadline):
        return min(seconds, deadline - anyio.current_time() - margin)
    return seconds


class PluginClient(BasePluginHandle):
    """One plugin, launched or reattached (see the module docstring).

    ``await host.launch(PluginClient(config))`` (a :class:`plugwire.core.Host`),
    ``async with PluginClient(config) as client:`` (start on enter, close on exit), or
    go-plugin style ``await client.start()`` ... ``await client.aclose()``: the client
    runs its background work in asyncio tasks of its own, so no task group is needed.
    asyncio only.
    """

    family = "goplugin"

    def __init__(self, config: ClientConfig) -> None:
        name = client_name(config)
        controller = config.controller
        if controller is None:
            controller = Controller(name, {BROKER: True})
        super().__init__(name, controller=controller, shutdown=config.shutdown_policy)
        self.config = config
        self._proc_task: asyncio.Task[None] | None = None
        self._socket_dir: str | None = None
        self._own_cert: Certificate | None = None
        self._tls: TLSConfig | None = None
        self._raw_channel: grpc.aio.Channel | None = None
        self._channel: MappedChannel | None = None
        self._broker: GrpcBroker | None = None
        self._muxer: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._call_readers: set[asyncio.Task[Any]] = set()
        self._stdio_task: asyncio.Task[None] | None = None
        self._announce: Announce | None = None
        self._plugins: dict[str, GrpcPlugin] = {}
        self._negotiated: int | None = None
        self._address: Address | None = None
        self._reattached_pid: int | None = None
        self._exited: anyio.Event | None = None
        self._ready = False
        self._offer: tuple[str, ...] = (GRPC,)
        self._ttrpc: TtrpcConnection | None = None

    # -- state -----------------------------------------------------------------

    @property
    def negotiated_version(self) -> int | None:
        """The app protocol version in use (after :meth:`start`)."""
        return self._negotiated

    @property
    def address(self) -> Address | None:
        """Where the plugin listens (after :meth:`start`)."""
        return self._address

    @property
    def protocol(self) -> str | None:
        """The wire in use: ``"grpc"`` or ``"ttrpc"`` (after :meth:`start`)."""
        return (
            self._announce.protocol
            if self._announce
            else (self.config.reattach.protocol if self.config.reattach else None)
        )

    @property
    def pid(self) -> int | None:
        """The plugin's process id (``None`` before it was started)."""
        if self._process is not None:
            try:
                return self._process.pid
            except ClosedError:
                return None
        return self._reattached_pid

    @property
    def exited(self) -> bool:
        """Whether the plugin process has exited."""
        if self._process is not None:
            return self._process.done.is_set()
        return self._exited is not None and self._exited.is_set()

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC connection to the plugin (unary calls raise plugwire errors).

        Raises :class:`ConfigError` when the negotiated wire is ttrpc
        (:attr:`ttrpc_client` is the connection then)."""
        if self._channel is None:
            if self._ttrpc is not None:
                raise ConfigError(
                    "no gRPC channel: the negotiated wire is ttrpc",
                    peer=self.name,
                    step="channel",
                    expected="grpc",
                    seen=TTRPC,
                )
            raise ClosedError("client is not started", peer=self.name, step="channel")
        return self._channel

    @property
    def ttrpc_client(self) -> Any:
        """The :class:`plugwire.ttrpc.Client` when the negotiated wire is ttrpc, else ``None``."""
        return None if self._ttrpc is None else self._ttrpc.client

    @property
    def broker(self) -> GrpcBroker:
        if self._broker is None:
            raise ClosedError("client is not started", peer=self.name, step="broker")
        return self._broker

    def reattach_config(self) -> ReattachConfig | None:
        """How to reconnect to this plugin from another host process."""
        if self._address is None or self._negotiated is None:
            return None
        if self.config.reattach is not None:
            return self.config.reattach
        return ReattachConfig(
            protocol_version=self._negotiated,
            address=self._address,
            protocol=self.protocol or GRPC,
            pid=self.pid,
        )

    # -- start -----------------------------------------------------------------

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Launch (or reattach), handshake and connect (go-plugin's ``Client.Start``).

        Raises :class:`PluginStartError` (cannot execute, checksum mismatch),
        :class:`PluginTimeoutError` (no announce line within ``start_timeout``),
        :class:`PluginExitedError` (exited before announcing), and the announce
        errors of :func:`~plugwire.grpc.goplugin.announce.parse_announce`. On failure the
        plugin is stopped. :attr:`address` is where it listens.
        """
        require_asyncio("plugwire.grpc.goplugin.PluginClient")
        self._exited = anyio.Event()
        if self.config.reattach is not None:
            await self._reattach(self.config.reattach)
        else:
            await self._launch(task_group)
        await self._connect()
        timeout = min(START_CHECK_TIMEOUT, self.config.start_timeout)
        if self._ttrpc is not None:
            await self._check_ttrpc_answers(timeout)
        else:
            assert self._raw_channel is not None and self._address is not None
            await check_answers(
                self._raw_channel,
                self._address,
                timeout=timeout,
                peer=self.name,
                map_error=self._map_error,
            )
        self._ready = True

    async def _check_ttrpc_answers(self, timeout: float) -> None:
        """The start-up health check of :func:`check_answers`, over the negotiated ttrpc."""
        assert self._ttrpc is not None
        expected = f"Health.Check({GRPC_SERVICE_NAME!r}) SERVING within {timeout} s over ttrpc"
        try:
            status = await self._ttrpc.check_health(timeout=timeout)
        except PlugwireError as exc:
            mapped = await self._map_ttrpc_error(exc)
            if isinstance(mapped, PluginExitedError):
                raise mapped from exc
            raise PluginStartError(
                f"plugin does not answer at the address it announced, {self._address}",
                peer=self.name,
                step="health check",
                expected=expected,
                seen=f"{type(exc).__name__}: {str(exc)[:300]}",
            ) from exc
        if status != 1:
            raise PluginStartError(
                f"plugin at {self._address} is not serving",
                peer=self.name,
                step="health check",
                expected=expected,
                seen=f"status {status}",
            )

    async def _launch(self, task_group: anyio.abc.TaskGroup | None) -> None:
        cfg = self.config
        assert cfg.cmd is not None
        if cfg.secure_config is not None:
            check_binary(cfg.secure_config, cfg.cmd[0], peer=self.name)
        if cfg.multiplex:
            from . import _mux

            self._muxer = _mux.client_muxer(None)
        self._offer = host_offer(cfg, peer=self.name)
        env, self._socket_dir, self._own_cert = child_env(cfg, self._offer)
        proc = PluginProcess(
            resolve_command(cfg.cmd, peer=self.name),
            env=env,
            name=self.name,
            cwd=cfg.cwd,
            polite_signal=None,
            logger=logging.getLogger(f"plugwire.plugin.{self.name}"),
        )
        self._process = proc
        if task_group is not None:
            await proc.start(task_group)
            self._spawn(self._watch_process(proc))
        else:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._proc_task = asyncio.ensure_future(
                run_process(proc, ready, self._exited, peer=self.name)
            )
            await ready
        deadline = time.monotonic() + cfg.start_timeout
        _log.debug("waiting for the announce line of %s", self.name)
        line = await first_line(proc, deadline, cfg.start_timeout, peer=self.name)
        self._announce = parse_announce(
            line,
            versions=cfg.plugin_sets().keys(),
            allowed_protocols=self._offer,
            want_multiplex=cfg.multiplex,
            peer=self.name,
        )
        self._negotiated = self._announce.app_version
        self._plugins = cfg.plugin_sets()[self._negotiated]
        self._address = Address(self._announce.network, self._announce.address)  # type: ignore[arg-type]
        self._tls = tls_for(self.config, self._own_cert, self._announce, peer=self.name)

    async def _watch_process(self, proc: PluginProcess) -> None:
        await proc.done.wait()
        if self._exited is not None:
            self._exited.set()

    async def _reattach(self, rc: ReattachConfig) -> None:
        self._plugins = reattach_plugins(rc, self.config, peer=self.name)
        self._negotiated = rc.protocol_version
        self._address = rc.address
        self._tls = self.config.tls
        self._reattached_pid = rc.pid
        if rc.pid is not None:
            if not pid_alive(rc.pid):
                raise PluginExitedError(
                    "reattach: the plugin process is not running",
                    returncode=None,
                    peer=self.name,
                    step="reattach",
                )
            assert self._exited is not None
            self._spawn(watch_pid(rc.pid, self._exited))

    async def _connect(self) -> None:
        assert self._address is not None
        if self.protocol == TTRPC:
            await self._connect_ttrpc()
            return
        if self._muxer is not None:
            self._muxer.set_tls(self._tls)
            await self._muxer.connect(self._address)
            raw = await self._muxer.main_channel(self.config.grpc_options)
        else:
            raw = await open_channel(self._address, self._tls, options=self.config.grpc_options)
        self._raw_channel = raw
        self._channel = MappedChannel(raw, self._map_error)
        if TTRPC in self._offer:
            await self._probe_grpc(raw)
        listen = ListenConfig(
            socket_dir=self._socket_dir, socket_group=self.config.unix_socket_group or None
        )
        broker = GrpcBroker(
            tls=self._tls,
            listen=listen,
            muxer=self._muxer,
            peer=self.name,
            interceptors=[capability_interceptor(self.controller, BROKER)],
        )
        self._broker = broker
        self._spawn(broker.run_stream(open_client_stream(raw)), reads_calls=True)
        self._stdio_task = self._spawn(
            pump_stdio(
                raw,
                self.config.sync_stdout,
                self.config.sync_stderr,
                logger=logging.getLogger(f"plugwire.plugin.{self.name}.stdio"),
            ),
            reads_calls=True,
        )

    async def _connect_ttrpc(self) -> None:
        assert self._address is not None
        if self._address.network != "unix" or self._tls is not None:
            raise WireMismatchError(
                "ttrpc runs only on a unix socket without TLS",
                peer=self.name,
                step="connect ttrpc",
                expected="network unix and no TLS",
                seen=f"{self._address.network} tls={self._tls is not None}",
            )
        try:
            conn = await TtrpcConnection.connect(
                self._address.address, peer=self.name, timeout=self._probe_timeout()
            )
        except WireMismatchError:
            if await self._process_gone_soon():
                raise self._exited_error("connect ttrpc") from None
            raise
        self._ttrpc = conn
        listen = ListenConfig(
            socket_dir=self._socket_dir, socket_group=self.config.unix_socket_group or None
        )
        broker = GrpcBroker(
            tls=None,
            listen=listen,
            muxer=None,
            peer=self.name,
            interceptors=[capability_interceptor(self.controller, BROKER)],
        )
        self._broker = broker
        self._spawn(conn.run_broker(broker))
        self._stdio_task = self._spawn(
            conn.pump_stdio(
                self.config.sync_stdout,
                self.config.sync_stderr,
                logger=logging.getLogger(f"plugwire.plugin.{self.name}.stdio"),
            )
        )

    def _probe_timeout(self) -> float:
        return max(0.5, min(3.0, self.config.start_timeout))

    async def _probe_grpc(self, raw: grpc.aio.Channel) -> None:
        """After a negotiation answered ``grpc``: check that the endpoint speaks gRPC
        (a ttrpc endpoint never completes the HTTP/2 handshake)."""
        try:
            await check_health(raw, timeout=self._probe_timeout())
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                return  # it answered in gRPC (UNIMPLEMENTED, ...): the wire is right
            if await self._process_gone_soon():
                raise self._exited_error("connect grpc") from None
            raise WireMismatchError(
                "the plugin announced grpc but its endpoint does not speak gRPC",
                peer=self.name,
                step="connect grpc",
                expected="an HTTP/2 gRPC answer to grpc.health.v1.Health/Check",
                seen=f"{exc.code().name}: {exc.details()}",
            ) from None

    def _exited_error(self, step: str, message: str = "the plugin exited") -> PluginExitedError:
        proc = self._process
        return PluginExitedError(
            message,
            returncode=proc.returncode if proc is not None else None,
            stderr_tail=proc.stderr_tail if proc is not None else (),
            peer=self.name,
            step=step,
        )

    async def _map_ttrpc_error(self, exc: PlugwireError) -> PlugwireError:
        if await self._process_gone_soon():
            return self._exited_error(exc.step or "call", "the plugin exited during the call")
        return exc

    def _spawn(self, coro: Any, *, reads_calls: bool = False) -> asyncio.Task[Any]:
        """Run ``coro`` until the client is released. ``reads_calls``: it reads gRPC
        calls on the channel, and is let end by itself when the close cancels them
        (see :mod:`plugwire.grpc._drain`)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        tasks = self._call_readers if reads_calls else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    # -- errors ----------------------------------------------------------------

    async def _map_error(self, exc: grpc.aio.AioRpcError, method: str) -> PlugwireError:
        return await map_call_error(
            exc, method, peer=self.name, process=self._process, gone_soon=self._process_gone_soon
        )

    async def _process_gone_soon(self) -> bool:
        # The connection usually breaks a moment before the exit is reaped.
        if self._reattached_pid is not None and not pid_alive(self._reattached_pid):
            return True
        return await self.wait_exited(0.5)

    async def wait_exited(self, timeout: float | None = None) -> bool:
        """Wait until the plugin process exits; ``False`` when ``timeout`` passed first."""
        if self._exited is None:
            return False
        with anyio.move_on_after(timeout):
            await self._exited.wait()
            return True
        return False

    # -- calls -----------------------------------------------------------------

    def dispense(self, name: str) -> Any:
        """The client object of plugin ``name`` (its :meth:`GrpcPlugin.grpc_client`).

        Raises :class:`ConfigError` for a name the negotiated plugin set lacks.
        """
        if (self._channel is None and self._ttrpc is None) or self._broker is None:
            raise ClosedError("client is not started", peer=self.name, step="dispense")
        plugin = self._plugins.get(name)
        if plugin is None:
            raise ConfigError(
                f"unknown plugin type: {name}",
                peer=self.name,
                step="dispense",
                expected=f"one of {sorted(self._plugins)}",
                seen=name,
            )
        if self._ttrpc is not None:
            from plugwire.ttrpc import ServiceClient

            stub = plugin.ttrpc_client(self._broker, self._ttrpc.client)
            if isinstance(stub, ServiceClient):
                return MappedStub(stub, self._map_ttrpc_error)
            return stub
        assert self._channel is not None
        return plugin.grpc_client(self._broker, self._channel)

    async def ping(self, timeout: float | None = 5.0) -> None:
        """Health-check the plugin (``Health.Check("plugin")``); raises on failure."""
        if self._ttrpc is not None:
            try:
                status = await self._ttrpc.check_health(timeout=timeout)
            except ConnectionClosedError as exc:
                raise await self._map_ttrpc_error(exc) from exc
            if status != 1:
                raise ConnectionClosedError(
                    "plugin is not serving", peer=self.name, step="ping", seen=status
                )
            return
        if self._raw_channel is None:
            raise ClosedError("client is not started", peer=self.name, step="ping")
        try:
            status = await check_health(self._raw_channel, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise await self._map_error(exc, "/grpc.health.v1.Health/Check") from exc
        if status != 1:
            raise ConnectionClosedError(
                "plugin is not serving", peer=self.name, step="ping", seen=status
            )

    # -- stop ------------------------------------------------------------------

    async def _graceful_stop(self) -> None:
        """Broker closed, ``GRPCController.Shutdown``, the plugin's stdio stream let end,
        connection closed.

        Like go-plugin, the reply does not matter: a Go plugin stops its server
        inside the handler, which often cuts the reply off. Unless the call timed out,
        the plugin is ending: its stdio stream may still carry what it printed last
        (a plugwire plugin ends the stream once all of it is sent, a Go plugin's ends
        as its server stops), so the host waits for the stream's end, at most
        :data:`STDIO_DRAIN_TIMEOUT`, before closing the connection cuts it off. A
        reattached plugin (no process of ours) is then waited for here.
        """
        if self._broker is not None:
            await self._broker.aclose()
        ending = False
        if self._ttrpc is not None and not self.exited:
            try:
                await self._ttrpc.shutdown(timeout=max(0.05, self.shutdown.grace * 0.8))
                ending = True
            except (PlugwireError, TimeoutError) as exc:
                ending = not isinstance(exc, TimeoutError)  # a deadline error is one too
                _log.debug("shutdown RPC to %s: %s", self.name, exc)
        if self._raw_channel is not None and not self.exited:
            # The gRPC deadline must fire before the shutdown sequence's cancel scope:
            # grpc.aio can leak a CancelledError out of a call an anyio scope cancels
            # (grpc/grpc#43502, seen with a plugin that never answers).
            try:
                timeout = _within_scope(self.shutdown.grace * 0.8)
                await controller_shutdown(self._raw_channel, timeout=max(0.05, timeout))
                ending = True
            except grpc.aio.AioRpcError as exc:
                ending = exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED
                _log.debug("shutdown RPC to %s: %s", self.name, exc.code())
        if ending and self._stdio_task is not None:
            wait = _within_scope(STDIO_DRAIN_TIMEOUT)  # the connection's close still fits
            if wait > 0:
                await asyncio.wait({self._stdio_task}, timeout=wait)
        await self._close_connection()
        if self._process is None and self._reattached_pid is not None:
            await self.wait_exited()

    async def _close_connection(self) -> None:
        if self._broker is not None:
            await self._broker.aclose()
        if self._raw_channel is not None:
            await self._raw_channel.close(0)
        if self._ttrpc is not None:
            await self._ttrpc.aclose()
        if self._muxer is not None:
            await self._muxer.aclose()

    async def _release(self) -> None:
        """Channel, muxer, background tasks, socket directory; a reattached plugin
        that is still running (and not a test reattach) is SIGKILLed."""
        await self._close_connection()
        if self._process is None:
            self._kill_reattached()
        if self._proc_task is not None:
            with contextlib.suppress(BaseException):
                await self._proc_task
        await drain_tasks(list(self._call_readers))  # the close cancelled their calls
        await drain_tasks(list(self._tasks), timeout=0)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _kill_reattached(self) -> None:
        # Only a plugin we reattached to successfully is ours to kill.
        pid = self._reattached_pid
        if (
            pid is None
            or not self._ready
            or (self.config.reattach is not None and self.config.reattach.test)
        ):
            return
        kill_pid(pid, peer=self.name)

    def kill_now(self) -> None:
        """SIGKILL the plugin without waiting (no event loop needed): our child, or a
        reattached pid unless the reattach is a test one."""
        super().kill_now()
        if self._process is None:
            self._kill_reattached()


async def cleanup_clients(*, grace: float | None = None) -> None:
    """Close every live :class:`PluginClient`, in parallel (go-plugin's ``CleanupClients``;
    :func:`plugwire.core.cleanup_plugins` for this family)."""
    await cleanup_plugins(PluginClient, grace=grace)
