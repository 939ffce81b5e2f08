"""Host side: a :class:`~plugwire.core.tasks.PluginProvider` whose plugin runs in another process.

Register a :class:`RemoteProvider` under a name like any provider; when the manager
enables it, a :class:`RemotePlugin` — a core plugin handle, family ``tasks`` — is
launched through the manager's core :class:`~plugwire.core.host.Host`: the plugin
process starts as a go-plugin plugin
(:class:`plugwire.grpc.goplugin.PluginClient`: cookie, version negotiation, announce line, optional
AutoMTLS), the ``task_plugin`` service dispensed, and the plugin configured over
gRPC. The plugin validates its own configuration. Closing it is the core shutdown
sequence whose graceful step is the task-plugin protocol's ``Dispose`` (of every task
still open, then of the plugin itself: an empty task reference) followed by go-plugin's
shutdown.
Every stage call carries a gRPC deadline equal to what is left of the manager's
stage timeout, so a hanging plugin ends as a ``StageTimeoutError``; a plugin process
that dies makes its calls fail with its exit status and last stderr lines.
grpc.aio runs on asyncio only: under trio the provider raises
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc
from google.protobuf.message import Message

import grpc
from plugwire.core.controller import Controller
from plugwire.core.errors import (
    ConfigError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    RemoteError,
    TransportNotAvailableError,
)
from plugwire.core.handle import BasePluginHandle
from plugwire.core.status import StatusCode
from plugwire.core.tasks.context import TaskContext
from plugwire.core.tasks.engine import ResultSet, Sandbox, SandboxBuilder
from plugwire.core.tasks.errors import (
    FatalInternalError,
    FeatureNotSupportedError,
    MalformedPayloadError,
    NamingConflictError,
    StageTimeoutError,
)
from plugwire.core.tasks.plugin import (
    Plugin,
    PluginOptions,
    PluginProvider,
    TaskPlugin,
    TaskPluginOptions,
)
from plugwire.core.tasks.reasons import ExceptionReason
from plugwire.core.tasks.schema import JsonSchema

from ..goplugin.broker import GrpcBroker
from ..goplugin.client import ClientConfig, PluginClient
from ..goplugin.plugin import GrpcPlugin
from . import _wire
from ._generated import task_plugin_pb2 as pb

__all__ = ["RemotePlugin", "RemoteProvider"]

M = TypeVar("M", bound=Message)


class _TaskChannel(GrpcPlugin):
    """Host side of the ``task_plugin`` plugin: hands out the (error-mapping) channel."""

    def grpc_client(self, broker: GrpcBroker, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        return channel


class RemoteProvider(PluginProvider):
    """A plugin served by the go-plugin plugin process ``argv`` (see :mod:`.server`).

    ``env`` is the plugin's environment; the host's own is added only with
    ``inherit_env=True`` (by default a clean, explicit environment, as go-plugin's
    ``ClientConfig``); ``auto_mtls`` secures the
    connection with throwaway certificates; ``start_timeout`` bounds launch and
    handshake; ``kill_grace`` is how long the plugin gets after the Shutdown RPC.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        cwd: str | None = None,
        auto_mtls: bool = False,
        start_timeout: float = 30.0,
        kill_grace: float = 2.0,
    ) -> None:
        if not argv:
            raise ConfigError("empty plugin command", step="remote plugin", seen=list(argv))
        self.argv = list(argv)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = cwd
        self.auto_mtls = auto_mtls
        self.start_timeout = start_timeout
        self.kill_grace = kill_grace

    def config_schema(self) -> JsonSchema | None:
        # Known only once the process runs: the plugin validates its config itself.
        return {}

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        """Launch the process (go-plugin handshake), then configure the plugin.

        Raises what :meth:`plugwire.grpc.goplugin.PluginClient.start` raises for a plugin that
        cannot start (:class:`~plugwire.core.errors.PluginStartError`,
        :class:`~plugwire.core.errors.HandshakeError`,
        :class:`~plugwire.core.errors.PluginTimeoutError`...),
        :class:`~plugwire.core.errors.ConfigError` when the plugin rejects its
        configuration, and :class:`TransportNotAvailableError` off asyncio.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise TransportNotAvailableError(
                "out-of-process task plugins use grpc.aio, which runs on asyncio only",
                peer=options.name,
                step="new_plugin",
                expected="the asyncio backend",
                seen="no running asyncio loop (trio?)",
            ) from None
        plugin = RemotePlugin(
            options.name,
            PluginClient(
                ClientConfig(
                    handshake=_wire.HANDSHAKE,
                    plugins={_wire.PLUGIN_NAME: _TaskChannel()},
                    cmd=self.argv,
                    env=self.env,
                    inherit_env=self.inherit_env,
                    cwd=self.cwd,
                    auto_mtls=self.auto_mtls,
                    start_timeout=self.start_timeout,
                    kill_grace=self.kill_grace,
                    name=options.name,
                )
            ),
            config=options.config,
            start_timeout=self.start_timeout,
            controller=options.controller,
        )
        if options.host is not None:
            return await options.host.launch(plugin)
        await plugin.start(options.task_group)
        return plugin


class RemotePlugin(BasePluginHandle, Plugin):
    """The host's handle on a plugin process: a core plugin handle (family ``tasks``)
    and a :class:`Plugin` like any other.

    :meth:`start` launches the go-plugin process and configures the plugin
    (``Describe``, ``NewPlugin``); :meth:`aclose` runs the core shutdown sequence
    whose graceful step is ``Dispose`` (open tasks, then the plugin) and the go-plugin
    shutdown.
    """

    family = "tasks"

    def __init__(
        self,
        name: str,
        client: PluginClient,
        *,
        config: Any = None,
        start_timeout: float = 30.0,
        controller: Controller | None = None,
    ) -> None:
        super().__init__(name, controller=controller)
        self.client = client
        self._config = config
        self._start_timeout = start_timeout
        self._channel: grpc.aio.Channel | None = None
        self._payload_schema: JsonSchema = {"type": "object", "properties": {}}
        self._open_tasks: dict[tuple[str, int], pb.TaskRef] = {}
        self.provider = "?"

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        await self.client.start()
        self._process = self.client.process
        self._channel = self.client.dispense(_wire.PLUGIN_NAME)
        try:
            with anyio.fail_after(self._start_timeout):
                await self.configure(self._config)
        except TimeoutError:
            raise PluginTimeoutError(
                f"plugin did not answer its configuration within {self._start_timeout:g} s",
                peer=self.name,
                step="new_plugin",
            ) from None

    async def _graceful_stop(self) -> None:
        if self._channel is not None:
            # Dispose gets half of what is left; go-plugin's shutdown the rest.
            left = anyio.current_effective_deadline() - anyio.current_time()
            with anyio.move_on_after(left / 2 if math.isfinite(left) else self.shutdown.grace):
                for ref in list(self._open_tasks.values()):
                    await self._dispose(ref)
                await self._dispose(pb.TaskRef())  # the plugin itself
        await self.client.aclose()

    async def _dispose(self, ref: pb.TaskRef) -> None:
        try:
            await self.call("Dispose", ref, pb.StageResponse, step="dispose")
        except PlugwireError as exc:  # best effort: go-plugin's shutdown follows
            logging.getLogger(f"plugwire.plugin.{self.name}").debug("Dispose failed: %s", exc)
        self._open_tasks.pop((ref.task_id, ref.run_id), None)

    async def _release(self) -> None:
        self._channel = None
        # The graceful step closes the go-plugin client, but the shutdown sequence
        # skips it for a process already dead (SIGKILLed): close it here too, or
        # its handle stays live in plugwire.core.managed (aclose is idempotent).
        await self.client.aclose()

    async def call(self, method: str, request: Message, reply: type[M], *, step: str) -> M:
        """Call ``method`` with a deadline of what is left of the current stage's timeout."""
        if self._channel is None:
            raise FatalInternalError(
                f"out-of-process plugin {self.name!r} is not running", peer=self.name, step=step
            )
        timeout: float | None = None
        deadline = anyio.current_effective_deadline()
        if math.isfinite(deadline):
            # expire just before the manager's own timeout, so gRPC ends the call
            timeout = max(deadline - anyio.current_time() - 0.05, 0.001)
        rpc = self._channel.unary_unary(
            _wire.method(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply.FromString,
        )
        try:
            result: M = await rpc(request, timeout=timeout)
            return result
        except RemoteError as exc:
            if exc.code == StatusCode.DEADLINE_EXCEEDED:
                raise StageTimeoutError(
                    f"out-of-process plugin {self.name!r} did not answer {step!r} in time",
                    peer=self.name,
                    step=step,
                    expected="an answer within the stage timeout",
                    seen="gRPC DEADLINE_EXCEEDED",
                ) from exc
            raise FatalInternalError(
                f"out-of-process plugin {self.name!r} failed {step!r}: {exc}",
                peer=self.name,
                step=step,
            ) from exc
        except PluginExitedError as exc:
            raise FatalInternalError(
                f"out-of-process plugin {self.name!r} is gone: {exc}", peer=self.name, step=step
            ) from exc
        except PlugwireError as exc:
            raise FatalInternalError(
                f"out-of-process plugin {self.name!r} failed {step!r}: {exc}",
                peer=self.name,
                step=step,
            ) from exc

    async def configure(self, config: Any) -> None:
        desc = await self.call(
            "Describe",
            pb.DescribeRequest(protocol_version=_wire.PROTOCOL_VERSIONS[-1]),
            pb.DescribeResponse,
            step="describe",
        )
        self.provider = desc.provider
        res = await self.call(
            "NewPlugin",
            pb.NewPluginRequest(name=self.name, config_json=_wire.dumps(config)),
            pb.NewPluginResponse,
            step="new_plugin",
        )
        if res.HasField("error"):
            raise ConfigError(
                f"out-of-process plugin {self.name!r} rejected its configuration: "
                + "; ".join(res.error.messages),
                peer=self.name,
                step="new_plugin",
                seen=config,
            )
        try:
            schema = json.loads(res.payload_schema_json)
        except (json.JSONDecodeError, RecursionError):
            raise PluginStartError(
                "plugin sent a payload schema that is not JSON",
                peer=self.name,
                step="new_plugin",
                seen=res.payload_schema_json,
            ) from None
        self._payload_schema = schema

    def payload_schema(self) -> JsonSchema:
        return self._payload_schema

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        info = options.info
        res = await self.call(
            "NewTaskPlugin",
            pb.NewTaskPluginRequest(
                task_id=info.task_id, run_id=info.run_id, payload_json=_wire.dumps(options.payload)
            ),
            pb.StageResponse,
            step="new_task_plugin",
        )
        ref = pb.TaskRef(task_id=info.task_id, run_id=info.run_id)
        task = RemoteTaskPlugin(self, options.context, ref)
        task.handle(res, "new_task_plugin")
        self._open_tasks[(info.task_id, info.run_id)] = ref
        return task


class RemoteTaskPlugin(TaskPlugin):
    """One task's plugin in the plugin process."""

    def __init__(self, plugin: RemotePlugin, context: TaskContext, ref: pb.TaskRef) -> None:
        self._plugin = plugin
        self._context = context
        self._ref = ref

    def handle(self, res: pb.StageResponse, step: str) -> None:
        """Write the plugin's log lines, then raise its error if it reported one."""
        for line in res.log:
            if self._context.log_closed:
                logging.getLogger(f"plugwire.plugin.{self._plugin.name}").info("%s", line)
            else:
                self._context.write_log(line)
        if res.HasField("error"):
            raise _wire.error_from_pb(res.error, peer=self._plugin.name, step=step)

    async def _stage(self, method: str, request: Message, step: str) -> pb.StageResponse:
        return await self._plugin.call(method, request, pb.StageResponse, step=step)

    async def build_sandbox(self, builder: SandboxBuilder) -> None:
        res = await self._stage("BuildSandbox", self._ref, "build_sandbox")
        for var in res.set_env:
            try:
                builder.set_environment_variable(var.name, var.value)  # guarded: "env"
            except (NamingConflictError, FeatureNotSupportedError) as exc:
                raise MalformedPayloadError(
                    f"cannot set environment variable {var.name!r}: {exc.message}",
                    peer=self._plugin.name,
                    step="build_sandbox",
                ) from None
        self.handle(res, "build_sandbox")

    async def started(self, sandbox: Sandbox) -> None:
        res = await self._stage("Started", self._ref, "started")
        if res.abort_sandbox:
            await sandbox.abort()
        self.handle(res, "started")

    async def stopped(self, result: ResultSet) -> bool:
        working_dir = getattr(result, "working_dir", None)
        msg = pb.ResultSet(
            success=result.success,
            has_exit_code=result.exit_code is not None,
            exit_code=result.exit_code or 0,
            aborted=result.aborted,
            working_dir=str(working_dir) if working_dir is not None else "",
        )
        res = await self._stage("Stopped", pb.StoppedRequest(task=self._ref, result=msg), "stopped")
        self.handle(res, "stopped")
        return res.verdict

    async def finished(self, success: bool) -> None:
        res = await self._stage(
            "Finished", pb.FinishedRequest(task=self._ref, success=success), "finished"
        )
        self.handle(res, "finished")

    async def exception(self, reason: ExceptionReason) -> None:
        res = await self._stage(
            "Exception", pb.ExceptionRequest(task=self._ref, reason=reason.value), "exception"
        )
        self.handle(res, "exception")

    async def dispose(self) -> None:
        try:
            res = await self._stage("Dispose", self._ref, "dispose")
        finally:
            self._plugin._open_tasks.pop((self._ref.task_id, self._ref.run_id), None)
        self.handle(res, "dispose")
