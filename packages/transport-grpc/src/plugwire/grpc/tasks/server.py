"""Plugin side: serve a :class:`~plugwire.core.tasks.PluginProvider` from its own process.

:func:`serve` is a go-plugin plugin (:func:`plugwire.grpc.goplugin.serve`): the
cookie check (a friendly message and exit status 1 without it), version negotiation,
the announce line, AutoMTLS when the host asks, health, stdio and the controller's
Shutdown all come from there; it serves ``plugwire.tasks.v1.TaskPluginService`` as
the plugin ``task_plugin``. Each task gets a lock (its stages never overlap) and a
task group for its background work, cancelled at ``dispose``.

The plugin sees the same :class:`~plugwire.core.tasks.TaskPlugin` interface as in
process, with stand-ins for the engine objects: a sandbox builder that records
``set_environment_variable`` (applied by the host), a sandbox whose ``abort`` is
performed by the host when the stage returns, and a result set carrying success,
exit code, abort flag and working directory (``extract_file`` works when the plugin
can see that directory).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import anyio
import anyio.abc
import anyio.to_thread
import attrs

import grpc
from plugwire.core.errors import ClosedError
from plugwire.core.tasks.context import TaskContext, TaskInfo
from plugwire.core.tasks.engine import ResultSet, Sandbox, SandboxBuilder
from plugwire.core.tasks.errors import (
    FeatureNotSupportedError,
    MalformedPayloadError,
    NamingConflictError,
)
from plugwire.core.tasks.plugin import (
    Plugin,
    PluginOptions,
    PluginProvider,
    TaskPlugin,
    TaskPluginOptions,
)
from plugwire.core.tasks.reasons import ExceptionReason
from plugwire.core.tasks.schema import check_schema, schema_errors

from ..goplugin import server as _goplugin_server
from ..goplugin.broker import GrpcBroker
from ..goplugin.plugin import GrpcPlugin
from ..goplugin.server import ServeConfig
from . import _wire
from ._generated import task_plugin_pb2 as pb

__all__ = ["serve", "serve_async"]

_logger = logging.getLogger("plugwire.grpc.tasks.plugin")


class _Builder(SandboxBuilder):
    def __init__(self) -> None:
        self.env: list[tuple[str, str]] = []

    def set_environment_variable(self, name: str, value: str) -> None:
        if any(n == name for n, _ in self.env):
            raise NamingConflictError(f"environment variable {name!r} has already been set")
        self.env.append((name, value))

    async def start_sandbox(self) -> Sandbox:
        raise FeatureNotSupportedError("only the host starts the sandbox", step="start_sandbox")


class _Sandbox(Sandbox):
    def __init__(self) -> None:
        self.abort_requested = False

    async def wait_for_result(self) -> ResultSet:
        raise FeatureNotSupportedError(
            "an out-of-process plugin cannot wait for the sandbox", step="wait_for_result"
        )

    async def abort(self) -> None:
        self.abort_requested = True


class _Result(ResultSet):
    def __init__(self, msg: pb.ResultSet) -> None:
        self._msg = msg

    @property
    def success(self) -> bool:
        return self._msg.success

    @property
    def exit_code(self) -> int | None:
        return self._msg.exit_code if self._msg.has_exit_code else None

    @property
    def aborted(self) -> bool:
        return self._msg.aborted

    def _path(self, path: str, folder: bool) -> Path:
        if not self._msg.working_dir:
            raise FeatureNotSupportedError("the engine has no working directory", step="extract")
        base = Path(self._msg.working_dir).resolve()
        rel = Path(path)
        full = (base / rel).resolve()
        if rel.is_absolute() or ".." in rel.parts or not full.is_relative_to(base):
            raise MalformedPayloadError(f"artifact path {path!r} leaves the working directory")
        if not (full.is_dir() if folder else full.is_file()):
            raise FileNotFoundError(path)
        return full

    async def extract_file(self, path: str) -> Path:
        return await anyio.to_thread.run_sync(self._path, path, False)

    async def extract_folder(self, path: str) -> Path:
        return await anyio.to_thread.run_sync(self._path, path, True)


class _Task:
    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.plugin: TaskPlugin = TaskPlugin()
        self.lock = anyio.Lock()
        self.log: list[str] = []
        self.done = anyio.Event()
        context.add_log_sink(self.log.append)

    def take_log(self) -> list[str]:
        lines, self.log[:] = list(self.log), []
        return lines


class _Servicer:
    def __init__(self, provider: PluginProvider, version: int, tg: anyio.abc.TaskGroup) -> None:
        self.provider = provider
        self.version = version
        self.tg = tg
        self.plugin: Plugin | None = None
        self.name = "?"
        self.tasks: dict[tuple[str, int], _Task] = {}

    # -- plugin-wide ----------------------------------------------------------------
    async def describe(
        self, req: pb.DescribeRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DescribeResponse:
        if req.protocol_version != self.version:
            await ctx.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"protocol version {req.protocol_version} requested, {self.version} announced",
            )
        schema = self.provider.config_schema()
        return pb.DescribeResponse(
            protocol_version=self.version,
            provider=type(self.provider).__qualname__,
            config_schema_json=_wire.dumps(schema) if schema is not None else "",
        )

    async def new_plugin(
        self, req: pb.NewPluginRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.NewPluginResponse:
        if self.plugin is not None:
            await ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "NewPlugin was already called")
        try:
            config = json.loads(req.config_json) if req.config_json else None
            schema = self.provider.config_schema() or {"type": "object"}
            check_schema(schema, owner=req.name, what="config schema")
            messages = schema_errors(schema, config, root=f"config.{req.name}")
            if messages:
                raise MalformedPayloadError(*messages, peer=req.name, step="plugin config")
            plugin = await self.provider.new_plugin(PluginOptions(req.name, config, None, self.tg))
            schema_json = _wire.dumps(plugin.payload_schema())
        except Exception as exc:
            _logger.exception("NewPlugin failed")
            return pb.NewPluginResponse(error=_wire.error_to_pb(exc))
        self.plugin, self.name = plugin, req.name
        return pb.NewPluginResponse(payload_schema_json=schema_json)

    # -- per task -------------------------------------------------------------------
    def _task(self, ref: pb.TaskRef) -> _Task:
        task = self.tasks.get((ref.task_id, ref.run_id))
        if task is None:
            raise ClosedError(
                f"no task {ref.task_id!r} run {ref.run_id} (not created, or disposed)",
                step="task lookup",
            )
        return task

    async def _stage(
        self, task: _Task, call: Callable[[], Awaitable[None]], response: pb.StageResponse
    ) -> pb.StageResponse:
        async with task.lock:  # one stage of a task at a time, whatever the host does
            try:
                await call()
            except Exception as exc:
                response.error.CopyFrom(_wire.error_to_pb(exc))
        response.log.extend(task.take_log())
        return response

    async def new_task_plugin(
        self, req: pb.NewTaskPluginRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        plugin = self.plugin
        key = (req.task_id, req.run_id)
        if plugin is None or key in self.tasks:
            await ctx.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "NewPlugin not called" if plugin is None else f"task {key} exists already",
            )
            raise AssertionError("unreachable")
        context = TaskContext(TaskInfo(req.task_id, req.run_id))
        task = _Task(context)
        self.tasks[key] = task
        ready = anyio.Event()

        async def hold() -> None:  # the task's background work lives here until dispose
            async with anyio.create_task_group() as tg:
                context.bind(tg)
                ready.set()
                await task.done.wait()
                tg.cancel_scope.cancel()

        self.tg.start_soon(hold)
        await ready.wait()

        async def create() -> None:
            payload = json.loads(req.payload_json) if req.payload_json else {}
            task.plugin = await plugin.new_task_plugin(
                TaskPluginOptions(context.info, context, payload)
            )

        response = await self._stage(task, create, pb.StageResponse())
        if response.HasField("error"):  # the host will not dispose a task it never got
            self.tasks.pop(key, None)
            task.done.set()
        return response

    async def build_sandbox(
        self, req: pb.TaskRef, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        task = self._task(req)
        builder = _Builder()
        response = await self._stage(
            task, lambda: task.plugin.build_sandbox(builder), pb.StageResponse()
        )
        response.set_env.extend(pb.EnvVar(name=n, value=v) for n, v in builder.env)
        return response

    async def started(
        self, req: pb.TaskRef, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        task = self._task(req)
        sandbox = _Sandbox()
        response = await self._stage(task, lambda: task.plugin.started(sandbox), pb.StageResponse())
        response.abort_sandbox = sandbox.abort_requested
        return response

    async def stopped(
        self, req: pb.StoppedRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        task = self._task(req.task)
        response = pb.StageResponse()

        async def call() -> None:
            verdict = await task.plugin.stopped(_Result(req.result))
            if not isinstance(verdict, bool):
                raise TypeError(f"stopped() returned {verdict!r}, not a bool")
            response.verdict = verdict

        return await self._stage(task, call, response)

    async def finished(
        self, req: pb.FinishedRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        task = self._task(req.task)
        task.context.close_log()
        return await self._stage(
            task, lambda: task.plugin.finished(req.success), pb.StageResponse()
        )

    async def exception(
        self, req: pb.ExceptionRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        task = self._task(req.task)
        task.context.close_log()
        try:
            reason = ExceptionReason(req.reason)
        except ValueError:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown reason {req.reason!r}")
            raise AssertionError("unreachable") from None
        return await self._stage(task, lambda: task.plugin.exception(reason), pb.StageResponse())

    async def dispose(
        self, req: pb.TaskRef, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StageResponse:
        if not req.task_id:  # the plugin itself: the host is about to stop it
            return await self._dispose_plugin()
        task = self._task(req)
        try:
            return await self._stage(task, task.plugin.dispose, pb.StageResponse())
        finally:
            self.tasks.pop((req.task_id, req.run_id), None)
            task.done.set()

    async def _dispose_plugin(self) -> pb.StageResponse:
        response = pb.StageResponse()
        for task_id, run_id in list(self.tasks):
            task = self.tasks[(task_id, run_id)]
            try:
                res = await self._stage(task, task.plugin.dispose, pb.StageResponse())
            finally:
                self.tasks.pop((task_id, run_id), None)
                task.done.set()
            response.log.extend(res.log)
        plugin, self.plugin = self.plugin, None
        if plugin is not None:
            try:
                await plugin.aclose()
            except Exception as exc:
                _logger.exception("closing the plugin failed")
                response.error.CopyFrom(_wire.error_to_pb(exc))
        return response

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        def unary(fn: Any, req_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
            async def wrapped(req: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await fn(req, ctx)
                except ClosedError as exc:
                    await ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

            return grpc.unary_unary_rpc_method_handler(
                wrapped,
                request_deserializer=req_type.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )

        return grpc.method_handlers_generic_handler(
            _wire.SERVICE,
            {
                "Describe": unary(self.describe, pb.DescribeRequest),
                "NewPlugin": unary(self.new_plugin, pb.NewPluginRequest),
                "NewTaskPlugin": unary(self.new_task_plugin, pb.NewTaskPluginRequest),
                "BuildSandbox": unary(self.build_sandbox, pb.TaskRef),
                "Started": unary(self.started, pb.TaskRef),
                "Stopped": unary(self.stopped, pb.StoppedRequest),
                "Finished": unary(self.finished, pb.FinishedRequest),
                "Exception": unary(self.exception, pb.ExceptionRequest),
                "Dispose": unary(self.dispose, pb.TaskRef),
            },
        )


class _ServedTaskPlugin(GrpcPlugin):
    """The TaskPluginService as a go-plugin plugin (registered on the plugin's server)."""

    def __init__(self, servicer: _Servicer) -> None:
        self._servicer = servicer

    def grpc_server(self, broker: GrpcBroker, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((self._servicer.handler(),))


async def serve_async(provider: PluginProvider, *, config: ServeConfig | None = None) -> int:
    """Serve ``provider`` as a go-plugin plugin until the host stops it; the exit status.

    ``config`` may override the :class:`~plugwire.grpc.goplugin.ServeConfig` (its handshake and
    plugin set are replaced by the task plugins'). Returns 1 (after the friendly
    message) when not launched by a host.
    """
    async with anyio.create_task_group() as tg:
        servicer = _Servicer(provider, _wire.PROTOCOL_VERSIONS[-1], tg)
        base = config or ServeConfig(handshake=_wire.HANDSHAKE)
        cfg = attrs.evolve(
            base,
            handshake=_wire.HANDSHAKE,
            plugins={_wire.PLUGIN_NAME: _ServedTaskPlugin(servicer)},
            versioned_plugins={},
        )
        code = await _goplugin_server.serve_async(cfg)
        tg.cancel_scope.cancel()  # every task's background work ends with the plugin
    return code


def serve(provider: PluginProvider, *, config: ServeConfig | None = None) -> NoReturn:
    """Blocking :func:`serve_async`; exits the process with its status."""
    code = anyio.run(functools.partial(serve_async, provider, config=config), backend="asyncio")
    sys.stdout.flush()
    sys.exit(code)
