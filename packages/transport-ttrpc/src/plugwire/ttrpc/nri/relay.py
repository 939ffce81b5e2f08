"""Relaying lifecycle events to NRI plugins (upstream ``pkg/adaptation`` requests).

:class:`EventRelay` sends each pod and container event to the subscribed plugins in
index order, with upstream's error handling: a plugin that times out or disconnects
is dropped and the request goes on (unless its failure policy asks to fail the
request); any other plugin error fails the request (:class:`NriError`); events a
plugin answers with Unimplemented are retried as the legacy ``StateChange``.
CreateContainer, UpdateContainer and StopContainer replies are merged with conflict
detection (:mod:`.result`) and validators see the merged adjustment.
"""

from __future__ import annotations

import abc
import logging
from typing import TypeVar

import anyio
from google.protobuf.message import Message

from plugwire.core.errors import ConnectionClosedError, PlugwireError, RemoteError
from plugwire.core.status import StatusCode

from ._generated import api_pb2 as pb
from .api import Event, NriError, PluginRejectedError
from .plugin import NriPlugin
from .result import Result

__all__ = ["EventRelay"]

log = logging.getLogger("plugwire.ttrpc.nri.runtime")

M = TypeVar("M", bound=Message)

_STATE_CHANGE_FALLBACK = {
    Event.RUN_POD_SANDBOX,
    Event.POST_UPDATE_POD_SANDBOX,
    Event.STOP_POD_SANDBOX,
    Event.REMOVE_POD_SANDBOX,
    Event.POST_CREATE_CONTAINER,
    Event.START_CONTAINER,
    Event.POST_START_CONTAINER,
    Event.POST_UPDATE_CONTAINER,
    Event.REMOVE_CONTAINER,
}


def _is_fatal(exc: BaseException) -> bool:
    """Upstream ``isFatalError``: the plugin did not answer (deadline, lost connection)."""
    return isinstance(exc, TimeoutError | ConnectionClosedError)


class EventRelay(abc.ABC):
    """The runtime's event methods over its active plugins (in index order).

    A subclass provides the plugin list, :meth:`_drop` (close one plugin, killing a
    launched one if asked) and :meth:`_removed` (plugins left the list).
    """

    request_timeout: float

    def __init__(self) -> None:
        self._plugins: list[NriPlugin] = []
        self._lock = anyio.Lock()

    @abc.abstractmethod
    async def _drop(self, plugin: NriPlugin, *, kill: bool = False) -> None:
        """Close ``plugin`` (upstream ``close``, with ``stop`` when ``kill``)."""

    @abc.abstractmethod
    def _removed(self, plugins: list[NriPlugin]) -> None:
        """``plugins`` (closed) left the active list."""

    def _sort(self) -> None:
        self._plugins = sorted((p for p in self._plugins if not p.gone), key=lambda p: p.idx)

    def _drop_closed(self) -> None:
        """Upstream ``removeClosedPlugins``, at the end of each request."""
        closed = [p for p in self._plugins if p.gone]
        if closed:
            self._sort()
            self._removed(closed)

    # -- one plugin ----------------------------------------------------------------

    async def _relay(
        self, plugin: NriPlugin, event: Event, req: Message, resp_type: type[M]
    ) -> M | None:
        """One plugin call with upstream's error handling; None when skipped/dropped."""
        if not plugin.events & event.bit or plugin.gone:
            return None
        method = event.pretty_name
        try:
            try:
                return await plugin.call(method, req, resp_type, self.request_timeout)
            except RemoteError as exc:
                if exc.code != StatusCode.UNIMPLEMENTED or event not in _STATE_CHANGE_FALLBACK:
                    raise
                log.warning(
                    "plugin %s uses deprecated StateChange instead of a dedicated %s RPC call",
                    plugin.name,
                    method,
                )
                state = pb.StateChangeEvent(event=event.name)
                state.pod.CopyFrom(getattr(req, "pod"))  # noqa: B009
                if "container" in req.DESCRIPTOR.fields_by_name:
                    state.container.CopyFrom(getattr(req, "container"))  # noqa: B009
                await plugin.call("StateChange", state, pb.Empty, self.request_timeout)
                return resp_type()
        except PlugwireError as exc:
            if not _is_fatal(exc):
                if isinstance(exc, RemoteError):
                    raise NriError(
                        f"plugin {plugin.name} failed to handle {method} request: {exc.message}",
                        peer=plugin.name,
                        step=method,
                    ) from exc
                raise
            if not (isinstance(exc, TimeoutError) and plugin.policy.keep_connected):
                log.error(
                    "closing plugin %s, failed to handle %s request: %s", plugin.name, method, exc
                )
                await plugin.kill()
            if plugin.policy.fail_request:
                raise NriError(
                    f"plugin {plugin.name} failed to handle {method} request: {exc}",
                    peer=plugin.name,
                    step=method,
                ) from exc
            log.warning(
                "plugin %s failed to handle %s request, proceeding without it", plugin.name, method
            )
            return None

    async def _each(
        self, event: Event, req: Message, resp_type: type[M]
    ) -> list[tuple[NriPlugin, M]]:
        replies = []
        for plugin in list(self._plugins):
            rpl = await self._relay(plugin, event, req, resp_type)
            if rpl is not None:
                replies.append((plugin, rpl))
        return replies

    async def _event(self, event: Event, req: Message, resp_type: type[Message]) -> None:
        async with self._lock:
            try:
                await self._each(event, req, resp_type)
            finally:
                self._drop_closed()

    # -- pod events ------------------------------------------------------------------

    async def run_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.RUN_POD_SANDBOX, pb.RunPodSandboxRequest(pod=pod), pb.RunPodSandboxResponse
        )

    async def update_pod_sandbox(
        self,
        pod: pb.PodSandbox,
        overhead: pb.LinuxResources | None = None,
        resources: pb.LinuxResources | None = None,
    ) -> None:
        req = pb.UpdatePodSandboxRequest(pod=pod)
        if overhead is not None:
            req.overhead_linux_resources.CopyFrom(overhead)
        if resources is not None:
            req.linux_resources.CopyFrom(resources)
        await self._event(Event.UPDATE_POD_SANDBOX, req, pb.UpdatePodSandboxResponse)

    async def post_update_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.POST_UPDATE_POD_SANDBOX,
            pb.PostUpdatePodSandboxRequest(pod=pod),
            pb.PostUpdatePodSandboxResponse,
        )

    async def stop_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.STOP_POD_SANDBOX, pb.StopPodSandboxRequest(pod=pod), pb.StopPodSandboxResponse
        )

    async def remove_pod_sandbox(self, pod: pb.PodSandbox) -> None:
        await self._event(
            Event.REMOVE_POD_SANDBOX,
            pb.RemovePodSandboxRequest(pod=pod),
            pb.RemovePodSandboxResponse,
        )

    async def create_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> pb.CreateContainerResponse:
        """Relay CreateContainer in index order; the merged, validated adjustments.

        Raises :class:`ConflictError`, :class:`PluginRejectedError` or
        :class:`NriError` (a plugin failed the request).
        """
        async with self._lock:
            try:
                req = pb.CreateContainerRequest(pod=pod, container=container)
                validators = [
                    p
                    for p in self._plugins
                    if not p.gone and p.events & Event.VALIDATE_CONTAINER_ADJUSTMENT.bit
                ]
                validate: pb.ValidateContainerAdjustmentRequest | None = None
                if validators:
                    validate = pb.ValidateContainerAdjustmentRequest(pod=pod, container=container)
                result = Result.for_create(req)
                for plugin in list(self._plugins):
                    if plugin.gone:
                        continue
                    if validate is not None:
                        validate.plugins.add(name=plugin.base, index=plugin.idx)
                    rpl = await self._relay(
                        plugin, Event.CREATE_CONTAINER, req, pb.CreateContainerResponse
                    )
                    if rpl is not None:
                        result.apply(rpl, plugin.name)
                response = result.create_response()
                if validate is not None:
                    validate.adjust.CopyFrom(response.adjust)
                    validate.update.extend(response.update)
                    validate.owners.CopyFrom(result.owners.to_proto())
                    await self._validate(validators, validate)
                return response
            finally:
                self._drop_closed()

    async def _validate(
        self, validators: list[NriPlugin], req: pb.ValidateContainerAdjustmentRequest
    ) -> None:
        errors: list[PlugwireError] = []

        async def one(plugin: NriPlugin) -> None:
            event = Event.VALIDATE_CONTAINER_ADJUSTMENT
            try:
                rpl = await plugin.call(
                    event.pretty_name,
                    req,
                    pb.ValidateContainerAdjustmentResponse,
                    self.request_timeout,
                )
            except PlugwireError as exc:
                if _is_fatal(exc):
                    await plugin.kill()
                errors.append(
                    NriError(f"validator plugin {plugin.name} failed: {exc}", peer=plugin.name)
                )
                return
            if rpl.reject:
                reason = rpl.reason or "unknown rejection reason"
                errors.append(
                    PluginRejectedError(
                        f'validator "{plugin.name}" rejected container adjustment, '
                        f"reason: {reason}",
                        peer=plugin.name,
                        step=event.pretty_name,
                    )
                )

        async with anyio.create_task_group() as tg:
            for plugin in validators:
                if not plugin.gone:
                    tg.start_soon(one, plugin)
        if errors:
            raise errors[0]

    async def post_create_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_CREATE_CONTAINER,
            pb.PostCreateContainerRequest(pod=pod, container=container),
            pb.PostCreateContainerResponse,
        )

    async def start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.START_CONTAINER,
            pb.StartContainerRequest(pod=pod, container=container),
            pb.StartContainerResponse,
        )

    async def post_start_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_START_CONTAINER,
            pb.PostStartContainerRequest(pod=pod, container=container),
            pb.PostStartContainerResponse,
        )

    async def update_container(
        self, pod: pb.PodSandbox, container: pb.Container, resources: pb.LinuxResources
    ) -> pb.UpdateContainerResponse:
        """Relay UpdateContainer; the merged updates (the requested container's last)."""
        async with self._lock:
            try:
                req = pb.UpdateContainerRequest(
                    pod=pod, container=container, linux_resources=resources
                )
                result = Result.for_update(req)
                for plugin, rpl in await self._each(
                    Event.UPDATE_CONTAINER, req, pb.UpdateContainerResponse
                ):
                    result.apply(rpl, plugin.name)
                return result.update_response()
            finally:
                self._drop_closed()

    async def post_update_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.POST_UPDATE_CONTAINER,
            pb.PostUpdateContainerRequest(pod=pod, container=container),
            pb.PostUpdateContainerResponse,
        )

    async def stop_container(
        self, pod: pb.PodSandbox, container: pb.Container
    ) -> pb.StopContainerResponse:
        """Relay StopContainer; the merged updates plugins asked for other containers."""
        async with self._lock:
            try:
                req = pb.StopContainerRequest(pod=pod, container=container)
                result = Result.for_stop()
                for plugin, rpl in await self._each(
                    Event.STOP_CONTAINER, req, pb.StopContainerResponse
                ):
                    result.apply(rpl, plugin.name)
                return result.stop_response()
            finally:
                self._drop_closed()

    async def remove_container(self, pod: pb.PodSandbox, container: pb.Container) -> None:
        await self._event(
            Event.REMOVE_CONTAINER,
            pb.RemoveContainerRequest(pod=pod, container=container),
            pb.RemoveContainerResponse,
        )
