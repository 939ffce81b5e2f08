"""The host side of a Kubernetes-deployed go-plugin plugin.

:class:`KubeClient` creates a Deployment and an owner-referenced Service for one
plugin, waits for a ready pod, reads the plugin's announce line from the pod log,
reaches the plugin (through the API server's port-forward from outside the
cluster, or directly through the Service from inside it), connects over gRPC
(AutoMTLS by default), forwards the container log into :mod:`logging`, and on
:meth:`~KubeClient.kill` deletes exactly the objects it created.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import copy
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

import anyio
import anyio.abc
import attrs

from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    PlugwireError,
    TransportNotAvailableError,
)
from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import PluginClient

from .api import DEFAULT_TIMEOUT, KubeAPI, load_api_client, meta
from .errors import KubeAPIError, PluginAnnounceError
from .goplugin import (
    Announce,
    PluginFactory,
    connect,
    generate_cert,
    looks_like_announce,
    parse_announce,
)
from .logs import describe_error, follow_logs
from .portforward import PortForwarder
from .readiness import wait_ready
from .retry import DEFAULT_BACKOFF, Backoff
from .spec import PluginSpec, PreparedPlugin, host_env, prepare

__all__ = [
    "Access",
    "CreatedObject",
    "KubeClient",
    "cleanup_clients",
    "in_cluster",
    "resolve_access",
]

Access = Literal["auto", "port-forward", "direct"]

_log = logging.getLogger("plugwire.kube")
#: Annotation carrying the creating client's random token.
ANNOTATION_OWNER = "plugwire.io/owner-token"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


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


@attrs.frozen
class CreatedObject:
    """An object a :class:`KubeClient` created (and so may delete)."""

    kind: Literal["Deployment", "Service"]
    namespace: str
    name: str
    uid: str


def _forward_line(logger: logging.Logger, line: str) -> None:
    try:
        from plugwire.core.logs import forward_log_line
    except ImportError:  # pragma: no cover - older core
        logger.debug("%s", line)
        return
    forward_log_line(logger, line)


class KubeClient:
    """One plugin deployed to Kubernetes; use as ``async with KubeClient(...) as client``.

    Give the plugin as ``spec`` (a :class:`~plugwire.kube.PluginSpec`) or as your own
    ``deployment`` (+ optional ``service``), as dicts or ``kubernetes.client`` models.
    ``handshake`` is a :class:`plugwire.core.handshake.Handshake`; ``plugins`` maps plugin names to
    :class:`plugwire.grpc.goplugin.GrpcPlugin` objects or bare stub factories
    (``{"kv_grpc": kv_pb2_grpc.KVStub}``).

    ``access`` chooses how the plugin is reached: ``"port-forward"`` (through the API
    server: works from anywhere), ``"direct"`` (``<service>.<namespace>.svc:<port>``: only
    inside the cluster) or ``"auto"`` (direct when :func:`in_cluster`). Every API call
    has ``api_timeout`` and is retried per ``backoff``; ``start_timeout`` bounds
    readiness + announce + connect. ``managed`` clients are killed by
    :func:`cleanup_clients` and, as a last resort, their objects are deleted at exit.

    Errors: :class:`~plugwire.kube.KubeValidationError` (before anything is created),
    :class:`~plugwire.kube.KubeAPIError`, :class:`~plugwire.kube.PluginNotReadyError`,
    :class:`~plugwire.kube.PluginAnnounceError` and the handshake errors of
    :func:`~plugwire.kube.goplugin.parse_announce`. A failed start deletes what it
    created.
    """

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
        managed: bool = True,
        kill_timeout: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if access not in ("auto", "port-forward", "direct"):
            raise ConfigError(
                "unknown access mode",
                step="config",
                expected="auto, port-forward or direct",
                seen=access,
            )
        self.handshake = handshake
        self.plugins = dict(plugins)
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.kill_timeout = kill_timeout
        self.access: Access = access
        self.managed = managed
        self._cert = generate_cert() if auto_mtls else None
        versions = tuple(handshake.protocol_versions)
        env = host_env(
            cookie=handshake.cookie_env(),
            protocol_versions=versions,
            port=0,
            client_cert_pem=self._cert.cert_pem.decode() if self._cert else None,
        )
        self.prepared: PreparedPlugin = prepare(
            namespace=namespace,
            spec=spec,
            deployment=deployment,
            service=service,
            container=container,
            env=env,
        )
        self.name = self.prepared.name
        self.versions = versions
        self.api = KubeAPI(
            api_client if api_client is not None else load_api_client(kubeconfig),
            timeout=api_timeout,
            backoff=backoff,
            peer=self.name,
        )
        self.logger = logger or logging.getLogger(f"plugwire.plugin.{self.name}")
        self.created: list[CreatedObject] = []
        #: Random token stamped on the objects this client creates (annotation).
        self.token = secrets.token_hex(8)
        self.pod: str | None = None
        self.announce: Announce | None = None
        self.address: str | None = None
        self.chosen_access: Literal["port-forward", "direct"] | None = None
        self.forwarder: PortForwarder | None = None
        self.log_lines = 0
        self._connection: PluginClient | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._killed = False
        self._started = False
        self._kill_lock = anyio.Lock()

    # -- context management

    async def __aenter__(self) -> KubeClient:
        _require_asyncio()
        if self._killed:
            raise ClosedError(
                "a killed client cannot be started again", peer=self.name, step="start"
            )
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack
            await self.start()
        except BaseException:
            self._stack = None
            self._killed = True
            try:
                with anyio.CancelScope(shield=True):
                    await self._teardown()  # deletes what was created so far
            finally:
                if self._tg is not None:
                    self._tg.cancel_scope.cancel()
                await stack.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        try:
            with anyio.CancelScope(shield=True):
                await self.kill()
        finally:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
            if stack is not None:
                await stack.__aexit__(None, None, None)

    # -- start

    async def start(self) -> str:
        """Deploy, wait ready, read the announce line, connect and ping; return the dial target.

        Safe to call again: later calls return the same target.
        """
        if self._started and self.address is not None:
            return self.address
        if self._tg is None:
            raise ClosedError(
                "start() runs inside 'async with KubeClient(...)'",
                peer=self.name,
                step="start",
            )
        self._started = True
        if self.managed:
            _register(self)
        deadline = time.monotonic() + self.start_timeout
        await self._create()
        pod = await wait_ready(
            self.api,
            self.namespace,
            self.name,
            self.prepared.selector,
            timeout=max(0.0, deadline - time.monotonic()),
            peer=self.name,
        )
        self.pod = pod.metadata.name
        self.announce = await self._read_announce(self.pod, deadline)
        self.chosen_access = self._choose_access()
        if self.chosen_access == "port-forward":
            self.forwarder = PortForwarder(
                self.api, self.namespace, self.pod, self.prepared.container_port
            )
            self.address = await self._tg.start(self._background, self.forwarder.serve)
        else:
            port = self.prepared.service["spec"]["ports"][0]["port"]
            self.address = (
                f"{self.prepared.service['metadata']['name']}.{self.namespace}.svc:{port}"
            )
        with anyio.fail_after(max(1.0, deadline - time.monotonic())):
            self._connection = await connect(
                self.address,
                self.announce,
                handshake=self.handshake,
                plugins=self.plugins,
                own_cert=self._cert,
                peer=self.name,
            )
            await self._ping_until_ready(deadline)
        _log.info(
            "plugin %s ready: pod %s/%s via %s (%s)",
            self.name,
            self.namespace,
            self.pod,
            self.chosen_access,
            self.address,
        )
        return self.address

    async def _ping_until_ready(self, deadline: float) -> None:
        # The first connection through a fresh port-forward can race the pod's
        # listener: retry the health check (bounded by the start deadline).
        assert self._connection is not None
        delay = 0.05
        while True:
            try:
                await self._connection.ping(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
                return
            except PlugwireError:
                if time.monotonic() + delay >= deadline:
                    raise
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _background(
        self, fn: Any, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        # Background tasks get their own cancel scopes: kill() stops them without
        # cancelling the task group's scope, in which the user's 'async with' body runs.
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            if task_status is anyio.TASK_STATUS_IGNORED:
                await fn()
            else:
                await fn(task_status=task_status)

    def _choose_access(self) -> Literal["port-forward", "direct"]:
        return resolve_access(self.access)

    async def _create_one(
        self, kind: Literal["Deployment", "Service"], body: dict[str, Any]
    ) -> CreatedObject:
        """Create ``body``, stamped with this client's token so a retried create whose
        first attempt did succeed (reply lost) is recognised as ours, not someone else's."""
        from kubernetes import client

        meta_ = body.setdefault("metadata", {})
        meta_["annotations"] = {**(meta_.get("annotations") or {}), ANNOTATION_OWNER: self.token}
        name = str(meta_["name"])
        if kind == "Deployment":
            create: Any = self.api.apps.create_namespaced_deployment
            read: Any = self.api.apps.read_namespaced_deployment
            model: Any = client.V1Deployment.from_dict(body)
        else:
            create = self.api.core.create_namespaced_service
            read = self.api.core.read_namespaced_service
            model = client.V1Service.from_dict(body)
        what = f"create {kind} {self.namespace}/{name}"
        try:
            obj = meta(await self.api.call(what, create, self.namespace, model))
        except KubeAPIError as exc:
            if exc.reason != "AlreadyExists" or exc.attempts < 2:
                raise
            obj = meta(
                await self.api.call(
                    f"read {kind} {self.namespace}/{name}", read, name, self.namespace
                )
            )
            if (obj.annotations or {}).get(ANNOTATION_OWNER) != self.token:
                raise
        created = CreatedObject(kind, self.namespace, str(obj.name), str(obj.uid))
        self.created.append(created)
        return created

    async def _create(self) -> None:
        dep = await self._create_one("Deployment", copy.deepcopy(self.prepared.deployment))
        svc = copy.deepcopy(self.prepared.service)
        svc["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": dep.name,
                "uid": dep.uid,
                "blockOwnerDeletion": False,
            }
        ]
        await self._create_one("Service", svc)

    async def _read_announce(self, pod: str, deadline: float) -> Announce:
        assert self._tg is not None
        found: anyio.Event = anyio.Event()
        result: list[Announce | BaseException] = []
        follow_state: dict[str, Any] = {}
        tail: collections.deque[str] = collections.deque(maxlen=5)

        async def follow() -> None:
            async with follow_logs(self.api, self.namespace, pod, self.prepared.container) as logs:
                follow_state["logs"] = logs
                async for line in logs.lines:
                    if not result and looks_like_announce(line):
                        try:
                            result.append(
                                parse_announce(line, versions=self.versions, peer=self.name)
                            )
                        except PlugwireError as exc:
                            result.append(exc)
                        found.set()
                        continue
                    self.log_lines += 1
                    if not result:
                        tail.append(str(line))
                    _forward_line(self.logger, line)

        self._tg.start_soon(self._background, follow)
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            await found.wait()
        if not result:
            logs = follow_state.get("logs")
            seen = (
                f"{self.log_lines} other log lines, ending {list(tail)}"
                if logs is not None and logs.opened
                else f"no log: {describe_error(logs.last_error if logs is not None else None)}"
            )
            raise PluginAnnounceError(
                "the plugin printed no announce line",
                peer=self.name,
                step="announce",
                expected="CORE|APP|NETWORK|ADDR|PROTOCOL|CERT in the container log",
                seen=seen,
            )
        first = result[0]
        if isinstance(first, BaseException):
            raise first
        return first

    # -- use

    def client(self) -> PluginClient:
        """The live connection (dispense, ping).

        Raises :class:`ClosedError` before start and after kill.
        """
        if self._connection is None or self._killed:
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

    # -- kill

    async def kill(self) -> None:
        """Shut the plugin down and delete the Deployment and Service this client created.

        Blocks until both are gone (at most ``kill_timeout``). Objects it did not create
        are never touched (deletes carry the created object's UID as a precondition).
        Safe to call more than once.
        """
        async with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            await self._teardown()

    async def _teardown(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            with anyio.move_on_after(5.0), contextlib.suppress(Exception):
                await conn.kill()  # Shutdown RPC, channel closed
        for scope in self._scopes:  # the log follower and the port-forward server
            scope.cancel()
        errors: list[KubeAPIError] = []
        for obj in reversed(self.created):
            try:
                await _delete(self.api, obj)
            except KubeAPIError as exc:
                errors.append(exc)
        if not errors:
            deadline = time.monotonic() + self.kill_timeout
            for obj in self.created:
                await _wait_gone(self.api, obj, deadline)
        _unregister(self)
        if errors:
            raise errors[0]


def _delete_options(obj: CreatedObject) -> Any:
    from kubernetes import client

    return client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=obj.uid), propagation_policy="Background"
    )


async def _delete(api: KubeAPI, obj: CreatedObject) -> None:
    body = _delete_options(obj)
    fn = (
        api.apps.delete_namespaced_deployment
        if obj.kind == "Deployment"
        else api.core.delete_namespaced_service
    )
    try:
        await api.call(
            f"delete {obj.kind} {obj.namespace}/{obj.name}", fn, obj.name, obj.namespace, body=body
        )
    except KubeAPIError as exc:
        if exc.status == 404:
            return  # already gone
        if exc.status == 409:
            return  # UID precondition failed: that object is not ours any more
        raise


async def _wait_gone(api: KubeAPI, obj: CreatedObject, deadline: float) -> None:
    fn = (
        api.apps.read_namespaced_deployment
        if obj.kind == "Deployment"
        else api.core.read_namespaced_service
    )
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            current = await api.call(
                f"read {obj.kind} {obj.namespace}/{obj.name}", fn, obj.name, obj.namespace
            )
        except KubeAPIError as exc:
            if exc.status == 404:
                return
            raise
        if meta(current).uid != obj.uid:
            return
        await anyio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise KubeAPIError(
        f"{obj.kind} {obj.namespace}/{obj.name} still exists",
        status=0,
        reason="deletion timed out",
        retryable=False,
        step="kill",
    )


# -- managed clients

_managed: dict[int, KubeClient] = {}
_managed_lock = threading.Lock()
_atexit_registered = False


def _register(client: KubeClient) -> None:
    global _atexit_registered
    with _managed_lock:
        _managed[id(client)] = client
        if not _atexit_registered:
            atexit.register(_cleanup_at_exit)
            _atexit_registered = True


def _unregister(client: KubeClient) -> None:
    with _managed_lock:
        _managed.pop(id(client), None)


async def cleanup_clients() -> None:
    """Kill every managed client that is still alive (go-plugin's ``CleanupClients``)."""
    with _managed_lock:
        clients = list(_managed.values())
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(client.kill)


def _cleanup_at_exit() -> None:
    """Last resort at interpreter exit: delete what live managed clients created (sync)."""
    with _managed_lock:
        clients = list(_managed.values())
        _managed.clear()
    for client in clients:
        for obj in reversed(client.created):
            fn = (
                client.api.apps.delete_namespaced_deployment
                if obj.kind == "Deployment"
                else client.api.core.delete_namespaced_service
            )
            with contextlib.suppress(Exception):
                fn(
                    obj.name,
                    obj.namespace,
                    body=_delete_options(obj),
                    _request_timeout=client.api.timeout,
                )
