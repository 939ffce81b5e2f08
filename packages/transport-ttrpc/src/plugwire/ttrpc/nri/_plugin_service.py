"""The Plugin ttrpc service of a :class:`~plugwire.ttrpc.nri.stub.Stub`: the plugin side
of upstream ``pkg/stub``'s request handlers and event dispatch.

:class:`PluginService` decodes each runtime request, calls the plugin's handler for
it (:data:`HANDLER_EVENTS`: handler method -> event), and encodes the reply;
Configure, split Synchronize, Shutdown, the container lifecycle requests, state
change events and adjustment validation. :class:`Stub` extends it with the
connection lifecycle (connect, register, :meth:`~plugwire.ttrpc.nri.stub.Stub.serve`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from plugwire.core.errors import ConfigError, PlugwireError, RemoteError
from plugwire.core.status import StatusCode

from . import api
from ._generated import api_pb2 as pb
from ._session import Handler
from .adjust import Adjustment

__all__ = ["HANDLER_EVENTS", "OTHER_HANDLERS", "PluginService"]

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
OTHER_HANDLERS = ("configure", "synchronize", "shutdown")

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


class PluginService:
    """The Plugin service handlers, dispatching to the plugin's methods (see :class:`Stub`)."""

    name: str
    idx: str
    _handlers: dict[str, Callable[..., Awaitable[Any]]]
    implemented: int
    events: int
    failure_policy: pb.FailurePolicy
    registration_timeout: float
    request_timeout: float
    runtime_name: str
    runtime_version: str
    config: str
    synchronized: anyio.Event
    sync_chunks: int
    _sync_pods: list[pb.PodSandbox]
    _sync_ctrs: list[pb.Container]
    _configured: anyio.Event
    _config_error: BaseException | None

    @property
    def full_name(self) -> str:
        """``idx-name``, the name the runtime knows the plugin by."""
        return f"{self.idx}-{self.name}"

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
