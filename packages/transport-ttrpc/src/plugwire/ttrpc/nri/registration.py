"""Registering an NRI plugin: RegisterPlugin, Configure and Synchronize.

The runtime side of upstream ``plugin.start`` / ``plugin.configure`` /
``plugin.synchronize``: the Runtime service a plugin calls (``RegisterPlugin``,
``UpdateContainers``, each checked against the plugin's
:class:`~plugwire.core.Controller`), the Configure call with the runtime's identity
and timeouts, and the initial Synchronize, split into smaller messages while a
message is too large.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import anyio
import attrs

from plugwire.core.controller import CapabilityDeniedError
from plugwire.core.errors import (
    ConfigError,
    ConnectionClosedError,
    MessageTooLargeError,
    PluginTimeoutError,
    PlugwireError,
    RemoteError,
)
from plugwire.core.status import StatusCode

from . import api
from ._generated import api_pb2 as pb
from ._session import Handler
from .api import NriError

if TYPE_CHECKING:
    from .plugin import NriPlugin

__all__ = [
    "CAPABILITIES",
    "REGISTER_PLUGIN",
    "UPDATE_CONTAINERS",
    "GrantFn",
    "RegistrationConfig",
    "configure",
    "runtime_service",
    "synchronize",
    "wait_registered",
]

log = logging.getLogger("plugwire.ttrpc.nri.runtime")

#: Capability: register with the runtime (``RegisterPlugin``).
REGISTER_PLUGIN = "register_plugin"
#: Capability: ask for unsolicited container updates (``UpdateContainers``).
UPDATE_CONTAINERS = "update_containers"
#: Every capability a runtime can grant a plugin (all of them by default).
CAPABILITIES: frozenset[str] = frozenset({REGISTER_PLUGIN, UPDATE_CONTAINERS})

#: Which capabilities a plugin (``idx-name``) is granted.
GrantFn = Callable[[str], Collection[str]]

_MIN_OBJS_PER_SYNC = 8


@attrs.frozen
class RegistrationConfig:
    """What the runtime tells a plugin in Configure, and how long it waits."""

    runtime_name: str
    runtime_version: str
    registration_timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT
    request_timeout: float = api.DEFAULT_REQUEST_TIMEOUT
    nri_version: str = api.NRI_MODULE_VERSION


def _denied(exc: CapabilityDeniedError, method: str) -> RemoteError:
    return RemoteError(str(exc), code=StatusCode.PERMISSION_DENIED, step=method)


def runtime_service(plugin: NriPlugin) -> dict[tuple[str, str], Handler]:
    """The Runtime service ``plugin`` calls, each method behind its controller."""

    async def register(data: bytes) -> bytes:
        req = pb.RegisterPluginRequest.FromString(data)
        if plugin.process is None:
            try:
                api.check_plugin_name(req.plugin_name)
                api.check_plugin_index(req.plugin_idx)
            except ConfigError as exc:
                err = ConfigError(
                    f"plugin registered with an invalid name or index: {exc.message}",
                    peer=f"{req.plugin_idx}-{req.plugin_name}",
                    step="RegisterPlugin",
                    expected=exc.expected,
                    seen=exc.seen,
                )
                plugin.registration_failed(err)
                raise RemoteError(str(err), code=StatusCode.INVALID_ARGUMENT) from exc
            plugin.identify(req.plugin_idx, req.plugin_name)
        try:
            plugin.controller.require(REGISTER_PLUGIN)
        except CapabilityDeniedError as exc:
            plugin.registration_failed(exc)
            raise _denied(exc, "RegisterPlugin") from exc
        log.info("plugin %s registered (NRI version %s)", plugin.name, req.NRI_version or "unknown")
        plugin.registered.set()
        return b""

    async def update_containers(data: bytes) -> bytes:
        req = pb.UpdateContainersRequest.FromString(data)
        try:
            update = plugin.controller.require(UPDATE_CONTAINERS)
        except CapabilityDeniedError as exc:
            log.warning("plugin %s: %s", plugin.name, exc)
            raise _denied(exc, "UpdateContainers") from exc
        log.info("plugin %s requested %d container update(s)", plugin.name, len(req.update))
        failed = await update(list(req.update))
        return pb.UpdateContainersResponse(failed=failed).SerializeToString()

    return {
        (api.RUNTIME_SERVICE, "RegisterPlugin"): register,
        (api.RUNTIME_SERVICE, "UpdateContainers"): update_containers,
    }


async def wait_registered(plugin: NriPlugin, timeout: float) -> None:
    """Wait for RegisterPlugin; on failure kill (a launched plugin) and raise."""
    with anyio.move_on_after(timeout):
        await plugin.registered.wait()
    if plugin.registration_error is not None:
        # let the refusal reach the plugin (which then hangs up) before closing
        with anyio.move_on_after(1.0):
            await plugin.disconnected.wait()
        await plugin.kill()
        raise plugin.registration_error
    if plugin.registered.is_set() and not plugin.gone:
        return
    timed_out = not plugin.registered.is_set()
    exited = await plugin.exit_error("RegisterPlugin") if not timed_out else None
    await plugin.kill()
    if exited is not None:
        raise exited
    if timed_out:
        raise PluginTimeoutError(
            "plugin registration timed out",
            peer=plugin.name,
            step="RegisterPlugin",
            expected=f"registration within {timeout} s",
        )
    raise ConnectionClosedError(
        "failed to register plugin, connection closed", peer=plugin.name, step="RegisterPlugin"
    )


def _millis(seconds: float) -> int:
    return 0 if math.isinf(seconds) else int(seconds * 1000)


async def configure(plugin: NriPlugin, config: RegistrationConfig) -> None:
    """Send Configure; take the plugin's event mask and failure policy."""
    try:
        rpl = await plugin.call(
            "Configure",
            pb.ConfigureRequest(
                config=plugin.config,
                runtime_name=config.runtime_name,
                runtime_version=config.runtime_version,
                registration_timeout=_millis(config.registration_timeout),
                request_timeout=_millis(config.request_timeout),
                NRI_version=config.nri_version,
            ),
            pb.ConfigureResponse,
            config.request_timeout,
        )
    except PlugwireError as exc:
        detail = str(exc)
        proc = plugin.process
        if isinstance(exc, ConnectionClosedError) and proc is not None:
            # A plugin whose Configure failed may exit (closing the connection) before
            # its error reply is written (upstream's stub does): its stderr has the why.
            with anyio.move_on_after(1.0):
                await proc.done.wait()
            if proc.stderr_tail:
                detail += "; plugin stderr: " + " | ".join(proc.stderr_tail[-3:])
        await plugin.kill()
        raise NriError(
            f"failed to configure plugin: {detail}", peer=plugin.name, step="Configure"
        ) from exc
    events = rpl.events & 0xFFFFFFFF
    if events and events & ~api.VALID_EVENTS:
        await plugin.kill()
        raise NriError(
            f"invalid plugin events: 0x{events & ~api.VALID_EVENTS:x}",
            peer=plugin.name,
            step="Configure",
            expected=f"a subset of 0x{api.VALID_EVENTS:x}",
            seen=f"0x{events:x}",
        )
    plugin.events = events or api.VALID_EVENTS
    plugin.policy = rpl.failure_policy
    plugin.configured = True


async def synchronize(
    plugin: NriPlugin,
    pods: Sequence[pb.PodSandbox],
    ctrs: Sequence[pb.Container],
    timeout: float,
) -> list[pb.ContainerUpdate]:
    """Upstream's split Synchronize: shrink chunks while a message is too large.

    Raises :class:`NriError` (the connection is closed) when the plugin cannot
    take the state even split, or does not handle split requests.
    """
    pods_left, ctrs_left = list(pods), list(ctrs)
    per_pods, per_ctrs = len(pods_left), len(ctrs_left)
    while True:
        more = len(pods_left) > per_pods or len(ctrs_left) > per_ctrs
        req = pb.SynchronizeRequest(
            pods=pods_left[:per_pods], containers=ctrs_left[:per_ctrs], more=more
        )
        try:
            rpl = await plugin.call("Synchronize", req, pb.SynchronizeResponse, timeout)
        except MessageTooLargeError as exc:
            per_pods, per_ctrs = _shrink(per_pods, per_ctrs, exc)
            if per_pods < 0:
                await plugin.disconnect()
                raise NriError(
                    "failed to synchronize plugin with split messages",
                    peer=plugin.name,
                    step="Synchronize",
                ) from exc
            continue
        if not more:
            return list(rpl.update)
        if rpl.update or rpl.more != more:
            await plugin.disconnect()
            raise NriError(
                "plugin does not handle split sync requests",
                peer=plugin.name,
                step="Synchronize",
                expected="more=true and no updates on a partial sync",
                seen=f"more={rpl.more}, {len(rpl.update)} updates",
            )
        pods_left, ctrs_left = pods_left[per_pods:], ctrs_left[per_ctrs:]
        per_pods, per_ctrs = min(per_pods, len(pods_left)), min(per_ctrs, len(ctrs_left))


def _shrink(pods: int, ctrs: int, exc: MessageTooLargeError) -> tuple[int, int]:
    """Upstream ``recalcObjsPerSyncMsg``: (-1, -1) when it cannot shrink further."""
    if pods + ctrs <= _MIN_OBJS_PER_SYNC or exc.size <= exc.limit:
        return -1, -1
    factor = min(exc.limit / exc.size, 0.9)
    pods, ctrs = int(pods * factor), int(ctrs * factor)
    if pods + ctrs < _MIN_OBJS_PER_SYNC:
        pods = ctrs = _MIN_OBJS_PER_SYNC // 2
    return pods, ctrs
