"""The host side of a Kubernetes-deployed go-plugin plugin.

:class:`KubePlugin` is a core plugin handle
(:class:`plugwire.core.BasePluginHandle`, family ``"kube"``): starting it creates a
Deployment and an owner-referenced Service for one plugin (:mod:`.objects`), waits
for a ready pod, reads the plugin's announce line from the pod log (:mod:`.announce`),
reaches the plugin (through the API server's port-forward from outside the cluster,
or directly through the Service from inside it), connects over gRPC (AutoMTLS by
default) and forwards the container log into :mod:`logging`. Closing it
(:meth:`~plugwire.core.BasePluginHandle.aclose`) sends go-plugin's Shutdown RPC and
deletes exactly the objects it created. It has no process of its own.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import anyio
import anyio.abc

from plugwire.core.controller import Controller
from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    PluginStartError,
    PlugwireError,
    TransportNotAvailableError,
)
from plugwire.core.handle import BasePluginHandle
from plugwire.core.handshake import Handshake
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.grpc.goplugin import PluginClient

from .announce import PodLog
from .api import DEFAULT_TIMEOUT, KubeAPI, load_api_client
from .errors import KubeAPIError
from .goplugin import Announce, PluginFactory, connect, generate_cert
from .objects import CreatedObject, create_objects, delete_now, delete_object, wait_gone
from .portforward import PortForwarder
from .readiness import wait_ready
from .retry import DEFAULT_BACKOFF, Backoff
from .spec import PluginSpec, PreparedPlugin, host_env, prepare

__all__ = ["DEFAULT_SHUTDOWN", "Access", "KubePlugin", "in_cluster", "resolve_access"]

Access = Literal["auto", "port-forward", "direct"]

_log = logging.getLogger("plugwire.kube")
T = TypeVar("T")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

#: A KubePlugin's own shutdown policy: up to 30 s for the Shutdown RPC and for the
#: Deployment and Service to be gone. No process, so no SIGTERM step.
DEFAULT_SHUTDOWN = ShutdownPolicy(grace=30.0, term_grace=0.0)

#: Seconds the Shutdown RPC may take before the objects are deleted anyway.
SHUTDOWN_RPC_TIMEOUT = 5.0


def in_cluster(token_path: str = SERVICE_ACCOUNT_TOKEN) -> bool:
    """Whether this process runs in a pod (service host env and account token present)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(token_path)


def _require_asyncio() -> None:
    """Refuse trio (or no loop) before anything is created: grpc.aio runs on asyncio only."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise TransportNotAvailableError(
            "plugwire.kube needs the asyncio backend (grpc.aio does not run on trio): run it "
            "with asyncio.run() or anyio.run(..., backend='asyncio')",
            step="backend",
            expected="asyncio",
            seen="another event loop (trio?) or none",
        ) from None


def resolve_access(access: Access) -> Literal["port-forward", "direct"]:
    """``"auto"`` -> ``"direct"`` inside a pod (:func:`in_cluster`), else ``"port-forward"``."""
    if access == "auto":
        return "direct" if in_cluster() else "port-forward"
    return access


class KubePlugin(BasePluginHandle):
    """One plugin deployed to Kubernetes.

    ``async with KubePlugin(...) as plugin`` (the handle runs its background tasks in
    a task group of its own) or ``await host.launch(KubePlugin(...))`` on a
    :class:`plugwire.core.Host` (they run in the host's).

    Give the plugin as ``spec`` (a :class:`~plugwire.kube.PluginSpec`) or as your own
    ``deployment`` (+ optional ``service``), as dicts or ``kubernetes.client`` models.
    ``handshake`` is a :class:`plugwire.core.handshake.Handshake`; ``plugins`` maps plugin
    names to :class:`plugwire.grpc.goplugin.GrpcPlugin` objects or bare stub factories
    (``{"kv_grpc": kv_pb2_grpc.KVStub}``).

    ``access`` chooses how the plugin is reached: ``"port-forward"`` (through the API
    server: works from anywhere), ``"direct"`` (``<service>.<namespace>.svc:<port>``: only
    inside the cluster) or ``"auto"`` (direct when :func:`in_cluster`). Every API call
    has ``api_timeout`` and is retried per ``backoff``; ``start_timeout`` bounds
    readiness + announce + connect. ``shutdown`` bounds closing (default
    :data:`DEFAULT_SHUTDOWN`: ``grace`` for the Shutdown RPC, the deletes and waiting
    until both objects are gone). Like every core handle, a started plugin is in
    core's managed registry: :func:`plugwire.core.cleanup_plugins` closes it, and at
    interpreter exit :meth:`kill_now` deletes its objects.

    Errors: :class:`~plugwire.kube.KubeValidationError` (before anything is created),
    :class:`~plugwire.kube.KubeAPIError`, :class:`~plugwire.kube.PluginNotReadyError`,
    :class:`~plugwire.kube.PluginAnnounceError` and the handshake errors of
    :func:`~plugwire.kube.goplugin.parse_announce`. A failed start deletes what it
    created.
    """

    family: ClassVar[str] = "kube"

    def __init__(
        self,
        *,
        handshake: Handshake,
        plugins: Mapping[str, PluginFactory],
        spec: PluginSpec | None = None,
        deployment: object = None,
        service: object = None,
        container: str | None = None,
        namespace: str = "default",
        api_client: Any = None,
        kubeconfig: str | None = None,
        start_timeout: float = 60.0,
        api_timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff = DEFAULT_BACKOFF,
        access: Access = "auto",
        auto_mtls: bool = True,
        shutdown: ShutdownPolicy | None = None,
        controller: Controller | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if access not in ("auto", "port-forward", "direct"):
            raise ConfigError(
                "unknown access mode",
                step="config",
                expected="auto, port-forward or direct",
                seen=access,
            )
        cert = generate_cert() if auto_mtls else None
        versions = tuple(handshake.protocol_versions)
        env = host_env(
            cookie=handshake.cookie_env(),
            protocol_versions=versions,
            port=0,
            client_cert_pem=cert.cert_pem.decode() if cert else None,
        )
        prepared: PreparedPlugin = prepare(
            namespace=namespace,
            spec=spec,
            deployment=deployment,
            service=service,
            container=container,
            env=env,
        )
        super().__init__(
            prepared.name,
            controller=controller,
            shutdown=shutdown if shutdown is not None else DEFAULT_SHUTDOWN,
        )
        self._cert = cert
        self.prepared = prepared
        self.handshake = handshake
        self.plugins = dict(plugins)
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.access: Access = access
        self.versions = versions
        self.api = KubeAPI(
            api_client if api_client is not None else load_api_client(kubeconfig),
            timeout=api_timeout,
            backoff=backoff,
            peer=self.name,
        )
        self.logger = logger or logging.getLogger(f"plugwire.plugin.{self.name}")
        #: The objects this plugin created, oldest first (what closing deletes).
        self.created: list[CreatedObject] = []
        #: Random token stamped on the objects this plugin creates (annotation).
        self.token = secrets.token_hex(8)
        self.pod: str | None = None
        self.announce: Announce | None = None
        self.address: str | None = None
        self.chosen_access: Literal["port-forward", "direct"] | None = None
        self.forwarder: PortForwarder | None = None
        self._pod_log: PodLog | None = None
        self._connection: PluginClient | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._deletes_sent = False

    @property
    def log_lines(self) -> int:
        """How many container log lines (besides the announce line) were forwarded."""
        return self._pod_log.lines if self._pod_log is not None else 0

    # -- start

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Deploy, wait ready, read the announce line, connect and ping."""
        _require_asyncio()
        tg = self._require_task_group(task_group)
        try:
            await self._deploy_and_connect(tg)
        except BaseException:
            # A failed start deletes what it created, and waits until it is gone
            # (aclose after a failed start gets no grace for its graceful step).
            with anyio.CancelScope(shield=True):
                await self._close_connection(SHUTDOWN_RPC_TIMEOUT)
                self._cancel_background()
                try:
                    await self._delete_objects(wait=True)
                except PlugwireError as exc:
                    _log.warning("%s: deleting after a failed start: %s", self.peer, exc)
            raise

    async def _deploy_and_connect(self, tg: anyio.abc.TaskGroup) -> None:
        deadline = time.monotonic() + self.start_timeout
        await create_objects(self.api, self.prepared, self.token, self.created)
        pod = await wait_ready(
            self.api,
            self.namespace,
            self.name,
            self.prepared.selector,
            timeout=max(0.0, deadline - time.monotonic()),
            peer=self.name,
        )
        self.pod = pod.metadata.name
        assert self.pod is not None
        self._pod_log = PodLog(
            self.api,
            self.namespace,
            self.pod,
            self.prepared.container,
            versions=self.versions,
            peer=self.name,
            logger=self.logger,
        )
        tg.start_soon(self._background, self._pod_log.follow)
        self.announce = await self._pod_log.announce(deadline)
        self.chosen_access = resolve_access(self.access)
        if self.chosen_access == "port-forward":
            self.forwarder = PortForwarder(
                self.api, self.namespace, self.pod, self.prepared.container_port
            )
            self.address = await tg.start(self._background, self.forwarder.serve)
        else:
            port = self.prepared.service["spec"]["ports"][0]["port"]
            self.address = (
                f"{self.prepared.service['metadata']['name']}.{self.namespace}.svc:{port}"
            )
        with anyio.fail_after(max(1.0, deadline - time.monotonic())):
            self._connection = await self._connect_until_answered(deadline)
            await self._ping_until_ready(deadline)
        _log.info(
            "plugin %s ready: pod %s/%s via %s (%s)",
            self.name,
            self.namespace,
            self.pod,
            self.chosen_access,
            self.address,
        )

    async def _connect_until_answered(self, deadline: float) -> PluginClient:
        # The first connection through a fresh port-forward can race the pod's
        # listener, and a gRPC call on a channel whose first connection failed fails
        # at once: connect again until the start check answers. Other start errors
        # (a wrong certificate, no gRPC) are final.
        address, announce = self.address, self.announce
        assert address is not None and announce is not None

        async def attempt() -> PluginClient:
            return await connect(
                address,
                announce,
                handshake=self.handshake,
                plugins=self.plugins,
                own_cert=self._cert,
                peer=self.name,
            )

        def unanswered(exc: PlugwireError) -> bool:
            if isinstance(exc, PluginStartError) and exc.step == "health check":
                self.logger.debug("no answer at %s yet, connecting again: %s", address, exc)
                return True
            return False

        return await _retry_until(deadline, attempt, unanswered, first=0.1, cap=1.0)

    async def _ping_until_ready(self, deadline: float) -> None:
        # The same race, on the connection the start check went through.
        connection = self._connection
        assert connection is not None

        async def attempt() -> None:
            await connection.ping(timeout=max(0.5, min(5.0, deadline - time.monotonic())))

        await _retry_until(deadline, attempt, lambda _exc: True, first=0.05, cap=0.5)

    async def _background(
        self, fn: Any, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        # Background tasks get their own cancel scopes: closing stops them without
        # cancelling the task group they run in (the host's, or the 'async with' one).
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            if task_status is anyio.TASK_STATUS_IGNORED:
                await fn()
            else:
                await fn(task_status=task_status)

    # -- use

    def client(self) -> PluginClient:
        """The live go-plugin connection (dispense, ping).

        Raises :class:`ClosedError` before start and once closing has begun.
        """
        if self._connection is None or self.closing:
            raise ClosedError("the plugin is not connected", peer=self.name, step="client")
        return self._connection

    def dispense(self, name: str) -> Any:
        """The client object of plugin ``name``.

        See :meth:`plugwire.grpc.goplugin.PluginClient.dispense`.
        """
        return self.client().dispense(name)

    async def ping(self) -> None:
        """Health-check the plugin; raises when it does not answer SERVING."""
        await self.client().ping()

    # -- close

    async def _graceful_stop(self) -> None:
        """go-plugin's Shutdown RPC, then delete the Deployment and Service this plugin
        created and wait until both are gone.

        Objects it did not create are never touched (deletes carry the created
        object's UID as a precondition).
        """
        await self._close_connection(SHUTDOWN_RPC_TIMEOUT)
        try:
            await self._delete_objects(wait=True)
        except PlugwireError as exc:
            _log.warning("%s: deleting its objects: %s", self.peer, exc)
            raise

    async def _release(self) -> None:
        """Stop the log follower and the port-forward; delete the objects if the
        graceful step did not get to it (cut off by its grace)."""
        await self._close_connection(1.0)
        self._cancel_background()
        if self.created and not self._deletes_sent:
            with anyio.move_on_after(3.0):
                try:
                    await self._delete_objects(wait=False)
                except PlugwireError as exc:
                    _log.warning("%s: deleting its objects: %s", self.peer, exc)

    def kill_now(self) -> None:
        """Synchronous, best-effort delete of the objects this plugin created (one
        try each, for when no event loop is left, e.g. at interpreter exit)."""
        if self.created and not self._deletes_sent:
            self._deletes_sent = True
            delete_now(self.api, self.created)

    async def _close_connection(self, timeout: float) -> None:
        conn = self._connection
        if conn is None:
            return
        with anyio.move_on_after(timeout):
            try:
                await conn.aclose()  # Shutdown RPC, channel closed
            except Exception as exc:
                _log.debug("%s: closing the connection: %r", self.peer, exc)
        self._connection = None

    def _cancel_background(self) -> None:
        for scope in self._scopes:  # the log follower and the port-forward server
            scope.cancel()

    async def _delete_objects(self, *, wait: bool) -> None:
        errors: list[KubeAPIError] = []
        for obj in reversed(self.created):
            try:
                await delete_object(self.api, obj)
            except KubeAPIError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        self._deletes_sent = True
        if wait:
            deadline = time.monotonic() + self.shutdown.grace
            for obj in self.created:
                await wait_gone(self.api, obj, deadline)


async def _retry_until(
    deadline: float,
    attempt: Callable[[], Awaitable[T]],
    retry: Callable[[PlugwireError], bool],
    *,
    first: float,
    cap: float,
) -> T:
    """``attempt()`` until it returns, waiting ``first`` seconds after a failure and
    twice as long after each next one (at most ``cap``); a :class:`PlugwireError` for
    which ``retry`` is false, or one that leaves no time before ``deadline``
    (``time.monotonic()``), is raised."""
    delay = first
    while True:
        try:
            return await attempt()
        except PlugwireError as exc:
            if not retry(exc) or time.monotonic() + delay >= deadline:
                raise
        await anyio.sleep(delay)
        delay = min(delay * 2, cap)
