"""One running dr-provision plugin provider, as its host sees it: a core plugin handle.

:class:`ProviderPlugin` is a :class:`~plugwire.core.handle.BasePluginHandle`
(``family = "drp"``). Started (by :meth:`Host.launch <plugwire.core.host.Host.launch>`,
a :class:`~plugwire.http.drp.host.ProviderHost` or ``async with``) it does what
dr-provision does with a provider binary:

1. ``define`` (unless already done): parse and validate the ``models.PluginProvider``;
2. make a private directory (mode 0700) with two fresh socket paths, serve the
   server API (:mod:`~plugwire.http.drp.server_api`) on the ``FROM`` socket in the
   host's task group, run ``<provider> listen TO FROM`` in a scratch directory and
   wait (bounded) for ``READY!`` on its stdout;

then :meth:`~ProviderPlugin.config`, :meth:`~ProviderPlugin.action` (required params
checked against the definition before the call) and :meth:`~ProviderPlugin.publish`.
Closing is core's shutdown sequence with :data:`DRP_SHUTDOWN`: the graceful step is
``POST /api-plugin/v4/stop`` (dr-provision's ``/stop``) and the wait for the exit, then
SIGTERM, then SIGKILL.

A provider that dies is noticed at once: pending and later calls raise
:class:`~plugwire.core.errors.PluginExitedError` with its exit status and last
stderr lines. Junk on stdout before ``READY!`` is reported in the start error.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.abc

from plugwire.core.controller import Controller
from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    ProtocolError,
)
from plugwire.core.handle import BasePluginHandle
from plugwire.core.process import PluginProcess
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.core.transport import Address

from ..client import HttpClient
from ..limits import DEFAULT_LIMITS, Limits
from ..messages import Response
from ..server import HttpServer
from .app import PLUGIN_API
from .checks import check_action, check_config
from .command import CommandLike, ProviderCommand
from .errors import ProviderError, PublishRefusedError
from .models import Action, Error, Event, LogLine, PluginProvider
from .server_api import DRP_CAPABILITIES, ObjectSource, ServerApi

__all__ = ["DRP_SHUTDOWN", "ProviderPlugin"]

#: dr-provision's stop: ``/stop`` and 5 s for the exit, then SIGTERM, 2 s, SIGKILL.
DRP_SHUTDOWN = ShutdownPolicy(grace=5.0, term_grace=2.0)

_PY_LEVEL = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "audit": logging.WARNING,
}


class ProviderPlugin(BasePluginHandle):
    """One provider executable, run and talked to the way dr-provision does.

    ``command`` is the executable (a path or an argv prefix such as
    ``[sys.executable, "provider.py"]``; relative paths are resolved now, since the
    provider runs in a scratch directory). ``endpoint``, ``token``, ``fileserver``
    and ``webroot`` become its ``RS_*`` environment.

    ``grant`` names the capabilities of :data:`DRP_CAPABILITIES` the provider may
    call back (all by default); they are kept in :attr:`controller`. What it sends
    back is kept: :attr:`events` (``/publish``), :attr:`logs` (``/log``, also
    re-logged on ``plugwire.drp.<name>``) and :attr:`leaving` (``/leaving``, after
    which the provider is closed).

    >>> async with ProviderPlugin(["./incrementer"], token=tok) as plugin:  # doctest: +SKIP
    ...     await plugin.config({})
    ...     await plugin.action("incrstatus")
    """

    family: ClassVar[str] = "drp"

    def __init__(
        self,
        command: CommandLike,
        *,
        name: str | None = None,
        endpoint: str = "https://127.0.0.1:8092",
        token: str = "",
        fileserver: str = "",
        webroot: str = "",
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        definition: PluginProvider | None = None,
        objects: ObjectSource | None = None,
        grant: Collection[str] = DRP_CAPABILITIES,
        ready_timeout: float = 10.0,
        call_timeout: float = 30.0,
        define_timeout: float = 20.0,
        shutdown: ShutdownPolicy = DRP_SHUTDOWN,
        limits: Limits = DEFAULT_LIMITS,
        on_event: Callable[[Event], None] | None = None,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.command = ProviderCommand.build(
            command,
            name=name,
            endpoint=endpoint,
            token=token,
            fileserver=fileserver,
            webroot=webroot,
            env=env,
            inherit_env=inherit_env,
            cwd=cwd,
        )
        unknown = sorted(set(grant) - set(DRP_CAPABILITIES))
        if unknown:
            raise ConfigError(
                f"unknown dr-provision capabilities {unknown}",
                peer=self.command.name,
                step="grant",
                expected=f"some of {list(DRP_CAPABILITIES)}",
                seen=sorted(grant),
            )
        granted: dict[str, object] = {
            "publish": self._record_event,
            "log": self._record_log,
            "objects": objects if objects is not None else {},
        }
        super().__init__(
            self.command.name,
            controller=Controller(
                self.command.name, {k: v for k, v in granted.items() if k in grant}
            ),
            shutdown=shutdown,
        )
        self.definition = definition
        self.ready_timeout = ready_timeout
        self.call_timeout = call_timeout
        self.define_timeout = define_timeout
        self.limits = limits
        self.on_event = on_event
        self.on_log = on_log
        self.events: list[Event] = []
        self.logs: list[LogLine] = []
        self.leaving: Error | None = None
        self.left = anyio.Event()
        self.junk: list[str] = []
        self.socket_dir: Path | None = None
        self.logger = logging.getLogger(f"plugwire.drp.{self.name}")
        self._client: HttpClient | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._server_scope: anyio.CancelScope | None = None
        self._scratch: Path | None = None

    # -- one-shot commands -----------------------------------------------------

    async def define(self) -> PluginProvider:
        """Run ``define``; parse and validate the definition (also kept in
        :attr:`definition`). Raises :class:`ProtocolError` for output that is not
        a valid ``models.PluginProvider``."""
        self.definition = await self.command.define(self.define_timeout)
        return self.definition

    async def unpack(self, directory: str | os.PathLike[str]) -> Path:
        """Run ``unpack DIR`` (the directory is created); return it."""
        return await self.command.unpack(directory, self.define_timeout)

    # -- the lifecycle core asks for -------------------------------------------

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Define (unless done), serve the server API, run ``listen TO FROM`` and
        wait for ``READY!``.

        Raises :class:`PluginTimeoutError` without ``READY!`` in time and
        :class:`PluginStartError` when the provider exits first; both name any
        junk it printed.
        """
        tg = self._require_task_group(task_group)
        if self.definition is None:
            await self.define()
        self._tg = tg
        self.socket_dir = Path(tempfile.mkdtemp(prefix="drp-"))
        os.chmod(self.socket_dir, stat.S_IRWXU)
        to_sock = self.socket_dir / "to.sock"
        from_sock = self.socket_dir / "from.sock"
        cwd = self.command.cwd
        if cwd is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="drp-scratch-"))
            cwd = str(self._scratch)
        api = ServerApi(
            controller=lambda: self.controller,
            definition=lambda: self.definition,
            on_leaving=self._on_leaving,
            logger=self.logger,
        )
        server = HttpServer(api, limits=self.limits, name=f"drp server for {self.name}")
        await tg.start(self._serve, server, Address("unix", str(from_sock)))
        proc = PluginProcess(
            [*self.command.argv, "listen", str(to_sock), str(from_sock)],
            env=self.command.env,
            name=self.name,
            cwd=cwd,
            polite_signal=signal.SIGTERM,
            stdout_buffer=10000,
        )
        self._process = proc
        await proc.start(tg)
        await self._wait_ready(proc, to_sock)
        self._client = HttpClient(
            Address("unix", str(to_sock)),
            limits=self.limits,
            timeout=self.call_timeout,
            peer=self.name,
        )
        tg.start_soon(self._watch, proc)

    async def _graceful_stop(self) -> None:
        """POST ``/stop`` and wait for the exit. A provider that exits before
        finishing its reply (the Go library calls ``os.Exit`` right after writing
        it) stopped cleanly."""
        proc = self._process
        if proc is None:
            return
        if self._client is not None and not proc.done.is_set():
            try:
                reply = await self._post("stop", None)
                self._raise_for(reply, "stop")
            except (PluginExitedError, ConnectionClosedError, PluginTimeoutError):
                pass
        await proc.done.wait()

    async def _release(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._server_scope is not None:
            self._server_scope.cancel()
        for path in (self.socket_dir, self._scratch):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)

    async def _serve(
        self,
        server: HttpServer,
        address: Address,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with anyio.CancelScope() as scope:
            self._server_scope = scope
            async with server.serve(address):
                task_status.started()
                await anyio.sleep_forever()

    async def _wait_ready(self, proc: PluginProcess, to_sock: Path) -> None:
        with anyio.move_on_after(self.ready_timeout):
            while True:
                line = await proc.readline_stdout()
                if line is None:
                    await proc.wait()
                    err = proc.exit_error("listen")
                    raise PluginStartError(
                        f"provider exited before READY!: {err.message}",
                        peer=self.name,
                        step="listen",
                        expected="READY!",
                        seen=f"stdout {self.junk}; exit status {proc.returncode}; "
                        f"stderr {proc.stderr_tail}",
                    )
                if line.strip() == "READY!":
                    break
                self.junk.append(line)
                self.logger.warning("provider printed junk before READY!: %r", line)
            try:
                stream = await anyio.connect_unix(str(to_sock))
            except OSError as exc:
                raise PluginStartError(
                    "provider said READY! but does not listen on its socket",
                    peer=self.name,
                    step="listen",
                    expected=f"a server on {to_sock}",
                    seen=exc.strerror or str(exc),
                ) from None
            await stream.aclose()
            return
        raise PluginTimeoutError(
            f"provider did not print READY! within {self.ready_timeout} s",
            peer=self.name,
            step="listen",
            expected="READY!",
            seen=f"stdout {self.junk}",
        )

    async def _watch(self, proc: PluginProcess) -> None:
        await proc.done.wait()
        if not self.closing and proc.error is not None:
            self.logger.error("%s", proc.exit_error("running"))

    # -- what the provider sends back --------------------------------------------

    def _record_event(self, event: Event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _record_log(self, line: LogLine) -> None:
        self.logs.append(line)
        if self.on_log is not None:
            self.on_log(line)
        self.logger.log(_PY_LEVEL.get(line.level, logging.INFO), "%s", line.message)

    def _on_leaving(self, error: Error) -> None:
        self.leaving = error
        self.left.set()
        if self._tg is not None and not self.closing:
            self._tg.start_soon(self.aclose)

    # -- state -------------------------------------------------------------------

    async def wait(self) -> int:
        """Wait for the provider process to exit; return its exit status."""
        if self._process is None:
            raise ClosedError("provider is not started", peer=self.name, step="wait")
        return await self._process.wait()

    @property
    def pid(self) -> int:
        """The process id of the listening provider."""
        if self._process is None:
            raise ClosedError("provider is not started", peer=self.name, step="pid")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    @property
    def error(self) -> PluginExitedError | None:
        """Why the provider died, if it exited without being stopped."""
        return None if self._process is None else self._process.error

    # -- calls into the provider -----------------------------------------------

    def _alive(self, step: str) -> tuple[PluginProcess, HttpClient]:
        proc, client = self._process, self._client
        if proc is None or client is None:
            raise ClosedError("provider is not started", peer=self.name, step=step)
        if proc.done.is_set():
            raise proc.exit_error(step)
        return proc, client

    async def _post(self, step: str, body: Any) -> Response:
        """POST one call, racing the provider's death. Every failure comes out as
        one typed :class:`PlugwireError` (never an ``ExceptionGroup``): a death as
        :class:`PluginExitedError`, otherwise what the client raised
        (:class:`PluginTimeoutError`, :class:`MessageTooLargeError`...)."""
        proc, client = self._alive(step)
        reply: Response | None = None
        failure: PlugwireError | None = None
        async with anyio.create_task_group() as tg:

            async def death() -> None:
                await proc.done.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(death)
            try:
                reply = await client.post_json(f"{PLUGIN_API}/{step}", body)
            except ConnectionClosedError as exc:
                failure = exc
                with anyio.move_on_after(1.0):
                    await proc.done.wait()
            except PlugwireError as exc:
                failure = exc
            tg.cancel_scope.cancel()
        if proc.done.is_set() and (reply is None or step != "stop"):
            raise proc.exit_error(step)
        if reply is None:
            if failure is None:  # pragma: no cover - cancelled without a death
                raise ConnectionClosedError(
                    "call cancelled without a reply", peer=self.name, step=step
                )
            if failure.peer is None:
                failure.peer = self.name
            if failure.step is None or failure.step.startswith("POST "):
                failure.step = step
            raise failure
        return reply

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Response:
        """Send one raw request to the provider's API (``path`` below
        ``/api-plugin/v4/``) and return the response as it is: no validation, no
        error mapping. For diagnostics and conformance tests."""
        _proc, client = self._alive(path)
        return await client.request(
            method, f"{PLUGIN_API}/{path}", body=body, headers={"content-type": content_type}
        )

    def _raise_for(self, reply: Response, step: str) -> None:
        if 200 <= reply.status < 300:
            return
        try:
            error = Error.from_json(reply.decode_json(peer=self.name, step=step))
        except ProtocolError:
            raise ProviderError(
                f"provider answered HTTP {reply.status} without a models.Error",
                code=reply.status,
                messages=[reply.body.decode("utf-8", "replace")[:500]],
                peer=self.name,
                step=step,
            ) from None
        if error.code != reply.status:
            self.logger.warning(
                "provider error code %s differs from HTTP status %s", error.code, reply.status
            )
        raise ProviderError.from_model(error, peer=self.name, step=step)

    async def config(self, params: Mapping[str, Any] | None = None) -> None:
        """POST ``/config``; raises :class:`ProviderError` when refused.

        Params missing any of the definition's ``RequiredParams`` raise
        :class:`ConfigRefusedError` without calling the provider."""
        params = dict(params or {})
        if self.definition is not None:
            check_config(self.definition, params, peer=self.name)
        reply = await self._post("config", params)
        self._raise_for(reply, "config")

    async def action(
        self,
        command: str | Action,
        *,
        model: Any = None,
        model_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        plugin: str = "",
        command_set: str = "",
    ) -> Any:
        """Validate and POST ``/action``; return the decoded result.

        Raises :class:`ActionRefusedError` (not sent) when the definition does not
        declare the command (404) or required params are missing (400), and
        :class:`ProviderError` with the provider's ``models.Error`` otherwise.
        """
        if isinstance(command, Action):
            action = command
        else:
            action = Action(
                command=command,
                model=model,
                plugin=plugin or self.name,
                command_set=command_set,
                params=dict(params or {}),
            )
        self.validate_action(action, model_type=model_type)
        reply = await self._post("action", action.to_json())
        self._raise_for(reply, f"action {action.command}")
        return reply.decode_json(peer=self.name, step=f"action {action.command}")

    def validate_action(self, action: Action, *, model_type: str | None = None) -> None:
        """Check ``action`` against the definition (see :meth:`action`)."""
        if self.definition is None:
            raise ClosedError("provider has not been defined", peer=self.name, step="action")
        check_action(self.definition, action, peer=self.name, model_type=model_type)

    async def publish(self, event: Event) -> None:
        """POST ``/publish``.

        Only a provider whose definition says ``HasPublish: true`` takes events
        (dr-provision sends them to no other, and the Go library has no ``/publish``
        route then: it would answer 404). For any other provider this raises
        :class:`PublishRefusedError` without calling it."""
        if self.definition is not None and not self.definition.has_publish:
            raise PublishRefusedError(
                f"provider {self.definition.name or self.name} does not take events: "
                "its definition says HasPublish false",
                code=404,
                key=self.name,
                peer=self.name,
                step="publish",
            )
        reply = await self._post("publish", event.to_json())
        self._raise_for(reply, "publish")
