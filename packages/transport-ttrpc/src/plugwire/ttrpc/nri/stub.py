"""Write an NRI plugin in Python (upstream ``pkg/stub``).

A plugin is any object with some of these ``async`` methods (the event mask is
derived from which ones exist; having none is a :class:`ConfigError` at
construction)::

    run_pod_sandbox(pod)                       update_pod_sandbox(pod, overhead, resources)
    post_update_pod_sandbox(pod)               stop_pod_sandbox(pod)
    remove_pod_sandbox(pod)                    create_container(pod, ctr) -> adjustment
    post_create_container(pod, ctr)            start_container(pod, ctr)
    post_start_container(pod, ctr)             update_container(pod, ctr, resources) -> updates
    post_update_container(pod, ctr)            stop_container(pod, ctr) -> updates
    remove_container(pod, ctr)                 validate_container_adjustment(request)
    configure(config, runtime, version) -> event mask (0: everything implemented)
    synchronize(pods, containers) -> updates   shutdown()

``create_container`` may return ``None``, a :class:`ContainerAdjustment`, an
:class:`~plugwire.ttrpc.nri.adjust.Adjustment` builder, or a tuple ``(adjustment,
updates)``. Raising from a handler fails the request with the error text;
``validate_container_adjustment`` rejects by raising.

:class:`Stub` connects to ``NRI_PLUGIN_SOCKET`` (fd 3, when the runtime launched the
plugin) or to the socket path (default ``/var/run/nri/nri.sock``), registers with
its name and index (options, then ``NRI_PLUGIN_NAME``/``NRI_PLUGIN_IDX``, then
``argv[0]`` of the form ``NN-name``), answers Configure (taking the runtime's
timeouts), collects split Synchronize requests, and serves events until the runtime
closes the connection; with ``reconnect=True`` it dials again when an external
runtime restarts. The Plugin service it serves (decoding requests, dispatching
them to the handlers above) is :class:`~plugwire.ttrpc.nri._plugin_service.PluginService`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc

from plugwire.core.controller import CapabilityDeniedError
from plugwire.core.errors import (
    ConfigError,
    ConnectionClosedError,
    PluginTimeoutError,
    RemoteError,
)
from plugwire.core.status import StatusCode

from . import api
from ._generated import api_pb2 as pb
from ._net import dial_unix, socket_stream
from ._plugin_service import HANDLER_EVENTS, OTHER_HANDLERS, PluginService
from ._session import Session, open_session, sole_error

__all__ = ["HANDLER_EVENTS", "Stub"]

log = logging.getLogger("plugwire.ttrpc.nri.stub")


class Stub(PluginService):
    """Runs ``plugin`` as an NRI plugin. See the module docstring for the handlers.

    Arguments:
        name, idx: registration identity (defaults: env, then ``argv[0]``).
        socket_path: runtime socket for external plugins.
        connection: an already connected byte stream to use instead.
        reconnect: dial again (every ``reconnect_interval`` s) after the runtime
            closes the connection, instead of returning from :meth:`serve_async`.
        fail_request, keep_connected: the failure policy sent in Configure (upstream
            ``WithFailurePolicy``): fail the runtime's request when this plugin times
            out or disconnects instead of carrying on without it; stay connected after
            a request timeout instead of being dropped.
        registration_timeout: how long to wait for registration and Configure
            before the runtime's Configure replaces it (upstream default 5 s).
        environ, argv0: where to look for the identity (tests override them).

    Raises :class:`ConfigError` when the plugin implements no handler or the
    identity cannot be derived (``invalid plugin name "x", idx-pluginname expected``).
    """

    def __init__(
        self,
        plugin: object,
        *,
        name: str | None = None,
        idx: str | None = None,
        socket_path: str | os.PathLike[str] | None = None,
        connection: anyio.abc.ByteStream | None = None,
        reconnect: bool = False,
        reconnect_interval: float = 1.0,
        on_close: Callable[[], None] | None = None,
        fail_request: bool = False,
        keep_connected: bool = False,
        registration_timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        argv0: str | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.plugin = plugin
        self._handlers: dict[str, Callable[..., Awaitable[Any]]] = {}
        mask = 0
        for method, event in HANDLER_EVENTS.items():
            fn = getattr(plugin, method, None)
            if fn is not None and callable(fn):
                self._handlers[method] = fn
                mask |= event.bit
        for method in OTHER_HANDLERS:
            fn = getattr(plugin, method, None)
            if fn is not None and callable(fn):
                self._handlers[method] = fn
        if mask == 0:
            raise ConfigError(
                f"plugin {type(plugin).__name__} does not implement any NRI request handlers",
                step="stub creation",
                expected="at least one of " + ", ".join(HANDLER_EVENTS),
            )
        #: Events the plugin implements.
        self.implemented = mask
        #: Events subscribed after Configure.
        self.events = mask
        self.name = name or env.get(api.PLUGIN_NAME_ENV, "")
        self.idx = idx or env.get(api.PLUGIN_IDX_ENV, "")
        if idx is not None:
            api.check_plugin_index(idx)
        if not (self.idx and self.name):
            base = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
            if self.idx:
                self.name = self.name or base
            else:
                self.idx, parsed = api.parse_plugin_name(base)
                self.name = self.name or parsed
        self._fd_env = env.get(api.PLUGIN_SOCKET_ENV, "")
        self.socket_path = os.fspath(socket_path) if socket_path else api.DEFAULT_SOCKET_PATH
        self._connection = connection
        self.reconnect = reconnect
        self.reconnect_interval = reconnect_interval
        self.on_close = on_close
        self.failure_policy = pb.FailurePolicy(
            fail_request=fail_request, keep_connected=keep_connected
        )
        self.registration_timeout = registration_timeout
        self.request_timeout = api.DEFAULT_REQUEST_TIMEOUT
        self.runtime_name = ""
        self.runtime_version = ""
        self.config = ""
        #: Set once registered and configured; renewed when the connection ends.
        self.started = anyio.Event()
        #: Set once the (possibly split) initial Synchronize was handled.
        self.synchronized = anyio.Event()
        #: Connections made so far, and Synchronize requests (chunks) received.
        self.connections = 0
        self.sync_chunks = 0
        self._session: Session | None = None
        self._sync_pods: list[pb.PodSandbox] = []
        self._sync_ctrs: list[pb.Container] = []
        self._configured: anyio.Event = anyio.Event()
        self._config_error: BaseException | None = None
        self._stop = anyio.Event()

    # -- connection ---------------------------------------------------------------

    async def _connect(self) -> anyio.abc.ByteStream:
        if self._connection is not None:
            conn, self._connection = self._connection, None
            return conn
        if self._fd_env:
            try:
                fd = int(self._fd_env)
            except ValueError:
                raise ConfigError(
                    f"invalid socket in environment ({api.PLUGIN_SOCKET_ENV}={self._fd_env!r})",
                    peer=self.full_name,
                    step="connect",
                    expected="a file descriptor number",
                    seen=self._fd_env,
                ) from None
            self._fd_env = ""  # a pre-connected socket is used once
            try:
                sock = socket.socket(fileno=fd)
            except OSError as exc:
                raise ConfigError(
                    f"invalid socket ({fd}) in environment: {exc}",
                    peer=self.full_name,
                    step="connect",
                ) from exc
            return await socket_stream(sock)
        try:
            return await dial_unix(self.socket_path)
        except OSError as exc:
            raise ConnectionClosedError(
                f"failed to connect to NRI service: {exc}",
                peer=self.full_name,
                step="connect",
                expected=f"an NRI runtime listening on {self.socket_path}",
                seen=exc.strerror,
            ) from exc

    async def serve_async(self) -> None:
        """Connect, register, serve until the runtime disconnects (or :meth:`stop`).

        Raises :class:`ConnectionClosedError` if the runtime cannot be reached,
        :class:`RemoteError`/:class:`PluginTimeoutError` if registration fails.
        With ``reconnect`` it keeps dialling until :meth:`stop`.
        """
        while True:
            try:
                try:
                    await self._serve_once()
                except BaseExceptionGroup as group:
                    raise sole_error(group) from None
            except ConnectionClosedError:
                if not self.reconnect or self._stop.is_set():
                    raise
                log.info("plugin %s: runtime not reachable, retrying", self.full_name)
            if not self.reconnect or self._stop.is_set():
                return
            with anyio.move_on_after(self.reconnect_interval):
                await self._stop.wait()
            if self._stop.is_set():
                return

    def serve(self, *, backend: str = "asyncio") -> None:
        """Blocking :meth:`serve_async` on its own event loop (``backend``: ``asyncio``
        or ``trio``): what a plugin's ``main`` calls."""
        anyio.run(self.serve_async, backend=backend)

    async def _serve_once(self) -> None:
        trunk = await self._connect()
        self._configured = anyio.Event()
        self._config_error = None
        async with open_session(
            trunk, self._service_handlers(), plugin_side=True, peer="runtime", stop=self._stop
        ) as session:
            self._session = session
            self.connections += 1
            try:
                await self._register(session)
                with anyio.move_on_after(self.registration_timeout):
                    await self._configured.wait()
                if not self._configured.is_set():
                    raise PluginTimeoutError(
                        "the runtime did not configure the plugin in time",
                        peer="runtime",
                        step="Configure",
                        expected=f"Configure within {self.registration_timeout} s",
                    )
                if self._config_error is not None:
                    raise self._config_error
                self.started.set()
                log.info("plugin %s started", self.full_name)
                await session.closed.wait()
            finally:
                self._session = None
                self.started = anyio.Event()
                self.synchronized = anyio.Event()
                self._sync_pods, self._sync_ctrs = [], []
                if self.on_close is not None:
                    self.on_close()

    async def _register(self, session: Session) -> None:
        req = pb.RegisterPluginRequest(
            plugin_name=self.name, plugin_idx=self.idx, NRI_version=api.NRI_MODULE_VERSION
        )
        await session.call(
            api.RUNTIME_SERVICE, "RegisterPlugin", req, pb.Empty, timeout=self.registration_timeout
        )

    def stop(self) -> None:
        """Close the connection and make :meth:`serve_async` return."""
        self._stop.set()

    async def update_containers(
        self, updates: Sequence[pb.ContainerUpdate | Any]
    ) -> list[pb.ContainerUpdate]:
        """Ask the runtime for unsolicited updates; returns the updates that failed.

        Raises :class:`~plugwire.core.CapabilityDeniedError` when the runtime did
        not grant this plugin ``update_containers`` (PERMISSION_DENIED on the wire).
        """
        session = self._session
        if session is None:
            raise ConnectionClosedError(
                "stub: no service/connection", peer=self.full_name, step="UpdateContainers"
            )
        msgs = [u.build() if hasattr(u, "build") else u for u in updates]
        req = pb.UpdateContainersRequest(update=msgs)
        try:
            rpl = await session.call(
                api.RUNTIME_SERVICE, "UpdateContainers", req, pb.UpdateContainersResponse
            )
        except RemoteError as exc:
            if exc.code == StatusCode.PERMISSION_DENIED:
                raise CapabilityDeniedError(
                    exc.message, peer="runtime", step="UpdateContainers"
                ) from exc
            raise
        return list(rpl.failed)
