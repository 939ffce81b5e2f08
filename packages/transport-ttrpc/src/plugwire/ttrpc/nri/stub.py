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
runtime restarts.
"""

from __future__ import annotations

import logging
import math
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
    PlugwireError,
    RemoteError,
)
from plugwire.core.status import StatusCode

from . import api
from ._generated import api_pb2 as pb
from ._net import dial_unix, socket_stream
from ._session import Handler, Session, open_session, sole_error
from .adjust import Adjustment

__all__ = ["HANDLER_EVENTS", "Stub"]

log = logging.getLogger("plugwire.ttrpc.nri.stub")

#: Handler method name -> the event it subscribes to.
HANDLER_EVENTS: dict[str, api.Event] = {
    "run_pod_sandbox": api.Event.RUN_POD_SANDBOX,
    "update_pod_sandbox": api.Event.UPDATE_POD_SANDBOX,
    "post_update_pod_sandbox": api.Event.POST_UPDATE_POD_SANDBOX,
    "stop_pod_sandbox": api.Event.STOP_POD_SANDBOX,
    "remove_pod_sandbox": api.Event.REMOVE_POD_SANDBOX,
    "create_container": api.Event.CREATE_CONTAINER,
    "post_create_container": api.Event.POST_CREATE_CONTAINER,
    "start_container": api.Event.START_CONTAINER,
    "post_start_container": api.Event.POST_START_CONTAINER,
    "update_container": api.Event.UPDATE_CONTAINER,
    "post_update_container": api.Event.POST_UPDATE_CONTAINER,
    "stop_container": api.Event.STOP_CONTAINER,
    "remove_container": api.Event.REMOVE_CONTAINER,
    "validate_container_adjustment": api.Event.VALIDATE_CONTAINER_ADJUSTMENT,
}
_OTHER_HANDLERS = ("configure", "synchronize", "shutdown")

_STATE_CHANGE_HANDLERS = {
    api.Event.RUN_POD_SANDBOX: "run_pod_sandbox",
    api.Event.POST_UPDATE_POD_SANDBOX: "post_update_pod_sandbox",
    api.Event.STOP_POD_SANDBOX: "stop_pod_sandbox",
    api.Event.REMOVE_POD_SANDBOX: "remove_pod_sandbox",
    api.Event.POST_CREATE_CONTAINER: "post_create_container",
    api.Event.START_CONTAINER: "start_container",
    api.Event.POST_START_CONTAINER: "post_start_container",
    api.Event.POST_UPDATE_CONTAINER: "post_update_container",
    api.Event.REMOVE_CONTAINER: "remove_container",
}


def _plugin_error(exc: Exception) -> RemoteError:
    if isinstance(exc, RemoteError):
        return exc
    return RemoteError(str(exc) or type(exc).__name__, code=StatusCode.UNKNOWN)


class Stub:
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
        for method in _OTHER_HANDLERS:
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

    @property
    def full_name(self) -> str:
        """``idx-name``, the name the runtime knows the plugin by."""
        return f"{self.idx}-{self.name}"

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

    # -- the Plugin service ------------------------------------------------------

    def _service_handlers(self) -> dict[tuple[str, str], Handler]:
        def unary(
            method: str, req_type: Any, fn: Callable[[Any], Awaitable[Any]]
        ) -> tuple[tuple[str, str], Handler]:
            async def handle(data: bytes) -> bytes:
                try:
                    request = req_type.FromString(data)
                except Exception as exc:
                    raise RemoteError(
                        f"cannot decode {method} request: {exc}", code=StatusCode.INTERNAL
                    ) from exc
                try:
                    reply = await fn(request)
                except PlugwireError as exc:
                    if isinstance(exc, RemoteError):
                        raise
                    raise _plugin_error(exc) from exc
                except Exception as exc:
                    raise _plugin_error(exc) from exc
                return bytes(reply.SerializeToString())

            return (api.PLUGIN_SERVICE, method), handle

        table = [
            unary("Configure", pb.ConfigureRequest, self._configure),
            unary("Synchronize", pb.SynchronizeRequest, self._synchronize),
            unary("Shutdown", pb.Empty, self._shutdown),
            unary("CreateContainer", pb.CreateContainerRequest, self._create_container),
            unary("UpdateContainer", pb.UpdateContainerRequest, self._update_container),
            unary("StopContainer", pb.StopContainerRequest, self._stop_container),
            unary("UpdatePodSandbox", pb.UpdatePodSandboxRequest, self._update_pod_sandbox),
            unary("StateChange", pb.StateChangeEvent, self._state_change),
            unary(
                "ValidateContainerAdjustment",
                pb.ValidateContainerAdjustmentRequest,
                self._validate,
            ),
        ]
        for method, req_type, resp_type, handler in (
            ("RunPodSandbox", pb.RunPodSandboxRequest, pb.RunPodSandboxResponse, "run_pod_sandbox"),
            (
                "PostUpdatePodSandbox",
                pb.PostUpdatePodSandboxRequest,
                pb.PostUpdatePodSandboxResponse,
                "post_update_pod_sandbox",
            ),
            (
                "StopPodSandbox",
                pb.StopPodSandboxRequest,
                pb.StopPodSandboxResponse,
                "stop_pod_sandbox",
            ),
            (
                "RemovePodSandbox",
                pb.RemovePodSandboxRequest,
                pb.RemovePodSandboxResponse,
                "remove_pod_sandbox",
            ),
            (
                "PostCreateContainer",
                pb.PostCreateContainerRequest,
                pb.PostCreateContainerResponse,
                "post_create_container",
            ),
            (
                "StartContainer",
                pb.StartContainerRequest,
                pb.StartContainerResponse,
                "start_container",
            ),
            (
                "PostStartContainer",
                pb.PostStartContainerRequest,
                pb.PostStartContainerResponse,
                "post_start_container",
            ),
            (
                "PostUpdateContainer",
                pb.PostUpdateContainerRequest,
                pb.PostUpdateContainerResponse,
                "post_update_container",
            ),
            (
                "RemoveContainer",
                pb.RemoveContainerRequest,
                pb.RemoveContainerResponse,
                "remove_container",
            ),
        ):
            table.append(unary(method, req_type, self._event(handler, resp_type)))
        return dict(table)

    def _event(self, handler: str, resp_type: Any) -> Callable[[Any], Awaitable[Any]]:
        is_pod = handler.endswith("pod_sandbox")

        async def call(request: Any) -> Any:
            fn = self._handlers.get(handler)
            if fn is not None:
                if is_pod:
                    await fn(request.pod)
                else:
                    await fn(request.pod, request.container)
            return resp_type()

        return call

    async def _configure(self, req: pb.ConfigureRequest) -> pb.ConfigureResponse:
        try:
            self.registration_timeout = req.registration_timeout / 1000.0 or math.inf
            self.request_timeout = req.request_timeout / 1000.0 or math.inf
            self.runtime_name, self.runtime_version = req.runtime_name, req.runtime_version
            self.config = req.config
            events = self.implemented
            fn = self._handlers.get("configure")
            if fn is not None:
                result = await fn(req.config, req.runtime_name, req.runtime_version)
                events = int(result or 0) or self.implemented
                extra = events & ~self.implemented
                if extra:
                    names = ",".join(e.pretty_name for e in api.events_in(extra))
                    raise ConfigError(
                        f"internal error: unhandled events {names} (0x{extra:x})",
                        peer=self.full_name,
                        step="Configure",
                        expected=f"a subset of 0x{self.implemented:x}",
                        seen=f"0x{events:x}",
                    )
            self.events = events
            return pb.ConfigureResponse(events=events, failure_policy=self.failure_policy)
        except BaseException as exc:
            self._config_error = exc
            raise
        finally:
            self._configured.set()

    async def _synchronize(self, req: pb.SynchronizeRequest) -> pb.SynchronizeResponse:
        self.sync_chunks += 1
        fn = self._handlers.get("synchronize")
        if fn is None:
            if not req.more:
                self.synchronized.set()
            return pb.SynchronizeResponse(more=req.more)
        self._sync_pods.extend(req.pods)
        self._sync_ctrs.extend(req.containers)
        if req.more:
            return pb.SynchronizeResponse(more=True)
        pods, ctrs = self._sync_pods, self._sync_ctrs
        self._sync_pods, self._sync_ctrs = [], []
        updates = await fn(pods, ctrs)
        self.synchronized.set()
        return pb.SynchronizeResponse(update=_updates(updates), more=False)

    async def _shutdown(self, _req: pb.Empty) -> pb.Empty:
        fn = self._handlers.get("shutdown")
        if fn is not None:
            await fn()
        return pb.Empty()

    async def _create_container(self, req: pb.CreateContainerRequest) -> pb.CreateContainerResponse:
        fn = self._handlers.get("create_container")
        if fn is None:
            return pb.CreateContainerResponse()
        result = await fn(req.pod, req.container)
        adjust, updates = result if isinstance(result, tuple) else (result, [])
        rpl = pb.CreateContainerResponse(update=_updates(updates))
        if isinstance(adjust, Adjustment):
            adjust = adjust.build()
        if adjust is not None:
            rpl.adjust.CopyFrom(adjust)
        return rpl

    async def _update_container(self, req: pb.UpdateContainerRequest) -> pb.UpdateContainerResponse:
        fn = self._handlers.get("update_container")
        if fn is None:
            return pb.UpdateContainerResponse()
        updates = await fn(req.pod, req.container, req.linux_resources)
        return pb.UpdateContainerResponse(update=_updates(updates))

    async def _stop_container(self, req: pb.StopContainerRequest) -> pb.StopContainerResponse:
        fn = self._handlers.get("stop_container")
        if fn is None:
            return pb.StopContainerResponse()
        updates = await fn(req.pod, req.container)
        return pb.StopContainerResponse(update=_updates(updates))

    async def _update_pod_sandbox(
        self, req: pb.UpdatePodSandboxRequest
    ) -> pb.UpdatePodSandboxResponse:
        fn = self._handlers.get("update_pod_sandbox")
        if fn is not None:
            await fn(req.pod, req.overhead_linux_resources, req.linux_resources)
        return pb.UpdatePodSandboxResponse()

    async def _state_change(self, evt: pb.StateChangeEvent) -> pb.Empty:
        try:
            handler = _STATE_CHANGE_HANDLERS.get(api.Event(evt.event))
        except ValueError:
            handler = None
        fn = self._handlers.get(handler) if handler else None
        if fn is not None:
            if handler is not None and handler.endswith("pod_sandbox"):
                await fn(evt.pod)
            else:
                await fn(evt.pod, evt.container)
        return pb.Empty()

    async def _validate(
        self, req: pb.ValidateContainerAdjustmentRequest
    ) -> pb.ValidateContainerAdjustmentResponse:
        fn = self._handlers.get("validate_container_adjustment")
        if fn is None:
            return pb.ValidateContainerAdjustmentResponse()
        try:
            await fn(req)
        except Exception as exc:
            return pb.ValidateContainerAdjustmentResponse(reject=True, reason=str(exc))
        return pb.ValidateContainerAdjustmentResponse()


def _updates(updates: Any) -> list[pb.ContainerUpdate]:
    if not updates:
        return []
    return [u.build() if hasattr(u, "build") else u for u in updates]
