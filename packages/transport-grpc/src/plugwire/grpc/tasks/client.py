"""Host side: a :class:`~plugwire.core.tasks.PluginProvider` whose plugin runs in another process.

Register a :class:`RemoteProvider` under a name like any provider; when the manager
enables it, the plugin process is launched (cookie and offered protocol versions in
its environment, stdin kept open as a host-alive signal), its announce line read,
and the plugin configured over gRPC. The plugin validates its own configuration.
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
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc
from google.protobuf.message import Message

import grpc
from plugwire.core.errors import (
    ConfigError,
    PluginStartError,
    PluginTimeoutError,
    TransportNotAvailableError,
)
from plugwire.core.process import PluginProcess
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

from . import _wire
from ._generated import task_plugin_pb2 as pb

__all__ = ["RemotePlugin", "RemoteProvider"]

M = TypeVar("M", bound=Message)


class RemoteProvider(PluginProvider):
    """A plugin served by the process ``argv`` (see :mod:`plugwire.grpc.tasks.server`).

    ``env`` is added to the plugin's environment (the host's own environment is
    inherited unless ``inherit_env=False``); ``start_timeout`` bounds launch,
    announce and configuration; ``kill_grace`` is how long the process gets to exit
    after stdin closes and SIGTERM before SIGKILL.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        start_timeout: float = 10.0,
        kill_grace: float = 2.0,
    ) -> None:
        if not argv:
            raise ConfigError("empty plugin command", step="remote plugin", seen=list(argv))
        self.argv = list(argv)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.kill_grace = kill_grace

    def config_schema(self) -> JsonSchema | None:
        # Known only once the process runs: the plugin validates its config itself.
        return {}

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        """Launch the process, read its announce line, configure it.

        Raises :class:`~plugwire.core.errors.PluginStartError` (cannot run, exited,
        bad announce), :class:`~plugwire.core.errors.PluginTimeoutError` (no announce
        in time), :class:`~plugwire.core.errors.ConfigError` (configuration
        rejected) or :class:`TransportNotAvailableError` (not on asyncio).
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
        if options.task_group is None:
            raise ConfigError(
                "a remote task plugin needs the manager's task group (use PluginManager.open)",
                peer=options.name,
                step="new_plugin",
            )
        name = options.name
        env = {
            **self.env,
            **_wire.HANDSHAKE.cookie_env(),
            _wire.VERSIONS_ENV: ",".join(map(str, _wire.PROTOCOL_VERSIONS)),
        }
        if not self.inherit_env:
            env.setdefault("PATH", os.environ.get("PATH", os.defpath))
        proc = PluginProcess(
            self.argv,
            env=env,
            name=name,
            cwd=self.cwd,
            stdin=True,
            inherit_env=self.inherit_env,
        )
        await proc.start(options.task_group)
        channel: grpc.aio.Channel | None = None
        try:
            with anyio.fail_after(self.start_timeout):
                line = await proc.readline_stdout()
                if line is None:
                    await proc.wait()
                    raise proc.exit_error("announce")
                _, path = _wire.parse_announce(line, peer=name)
                channel = grpc.aio.insecure_channel(f"unix:{path}")
                plugin = RemotePlugin(name, proc, channel, self.kill_grace)
                await plugin.configure(options.config)
                return plugin
        except TimeoutError:
            await _close(proc, channel, self.kill_grace)
            raise PluginTimeoutError(
                f"plugin process did not start within {self.start_timeout:g} s",
                peer=name,
                step="start",
                seen=f"last stderr: {proc.stderr_tail}" if proc.stderr_tail else None,
            ) from None
        except BaseException:
            await _close(proc, channel, self.kill_grace)
            raise


async def _close(proc: PluginProcess, channel: grpc.aio.Channel | None, grace: float) -> None:
    with anyio.CancelScope(shield=True):
        if channel is not None:
            await channel.close(None)
        await proc.terminate(grace)


class RemotePlugin(Plugin):
    """The host's handle on a plugin process: a :class:`Plugin` like any other."""

    def __init__(
        self, name: str, proc: PluginProcess, channel: grpc.aio.Channel, kill_grace: float
    ) -> None:
        self.name = name
        self.process = proc
        self._channel = channel
        self._kill_grace = kill_grace
        self._payload_schema: JsonSchema = {"type": "object", "properties": {}}
        self.provider = "?"

    async def call(self, method: str, request: Message, reply: type[M], *, step: str) -> M:
        """Call ``method`` with a deadline of what is left of the current stage's timeout."""
        timeout: float | None = None
        deadline = anyio.current_effective_deadline()
        if math.isfinite(deadline):
            # expire just before the manager's own timeout, so gRPC ends the call
            timeout = max(deadline - anyio.current_time() - 0.02, 0.001)
        rpc = self._channel.unary_unary(
            _wire.method(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply.FromString,
        )
        try:
            result: M = await rpc(request, timeout=timeout, wait_for_ready=False)
            return result
        except grpc.aio.AioRpcError as exc:
            raise await self._rpc_error(exc, step) from None

    async def _rpc_error(self, exc: grpc.aio.AioRpcError, step: str) -> Exception:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return StageTimeoutError(
                f"out-of-process plugin {self.name!r} did not answer {step!r} in time",
                peer=self.name,
                step=step,
                expected="an answer within the stage timeout",
                seen="gRPC DEADLINE_EXCEEDED",
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            with anyio.move_on_after(0.5):
                await self.process.wait()
            if not self.process.running:
                err: Exception = self.process.exit_error(step)
                return FatalInternalError(
                    f"out-of-process plugin {self.name!r} is gone: {err}", peer=self.name, step=step
                )
        return FatalInternalError(
            f"out-of-process plugin {self.name!r} failed {step!r}: "
            f"[{code.name if code else '?'}] {exc.details()}",
            peer=self.name,
            step=step,
        )

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
        except json.JSONDecodeError:
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
        task = RemoteTaskPlugin(
            self, options.context, pb.TaskRef(task_id=info.task_id, run_id=info.run_id)
        )
        task.handle(res, "new_task_plugin")
        return task

    async def aclose(self) -> None:
        """Close the channel, then stdin (the plugin's cue to exit), SIGTERM, SIGKILL."""
        await _close(self.process, self._channel, self._kill_grace)


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
                builder.set_environment_variable(var.name, var.value)
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
        res = await self._stage("Dispose", self._ref, "dispose")
        self.handle(res, "dispose")
