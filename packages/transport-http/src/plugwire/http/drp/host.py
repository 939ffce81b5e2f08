"""The server side: host one dr-provision plugin provider executable.

:class:`ProviderHost` does what dr-provision does with a provider binary:

1. ``define``: run ``<provider> define``, parse and validate the
   ``models.PluginProvider`` it prints;
2. ``unpack``: run ``<provider> unpack DIR`` into a files directory;
3. ``start``: make a private directory (mode 0700) with two fresh socket paths,
   serve the server API (``/api-server-plugin/v4/{publish,leaving,log}`` and
   ``GET /objects/<prefix>``) on the ``FROM`` socket, run
   ``<provider> listen TO FROM`` and wait (bounded) for ``READY!`` on its stdout;
4. ``config``, ``action`` (required params checked against the definition before
   the call), ``publish``, ``stop``.

A provider that dies is noticed at once: pending and later calls raise
:class:`~plugwire.core.errors.PluginExitedError` with its exit status and last
stderr lines. Junk on stdout before ``READY!`` is reported in the start error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import (
    ClosedError,
    ConnectionClosedError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    ProtocolError,
)
from plugwire.core.process import PluginProcess
from plugwire.core.transport import Address

from ..client import HttpClient
from ..limits import DEFAULT_LIMITS, Limits
from ..messages import Request, Response
from ..server import HttpServer
from .app import PLUGIN_API
from .errors import ActionRefusedError, ConfigRefusedError, ProviderError
from .models import Action, Error, Event, LogLine, PluginProvider
from .provider import SERVER_API

__all__ = ["ObjectSource", "ProviderHost"]

#: Objects served on ``GET /objects/<prefix>``: a mapping prefix -> list, or a
#: function of the prefix (plain or async).
ObjectSource = (
    Mapping[str, Sequence[Any]] | Callable[[str], Sequence[Any] | Awaitable[Sequence[Any]]]
)

_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
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


def _error_response(error: Error) -> Response:
    error = error.with_code()
    return Response.json(error.to_json(), error.code)


class ProviderHost:
    """Run and talk to one provider executable.

    Use ``async with ProviderHost(cmd, token=...) as host:`` (define + start on
    enter, stop on exit) or call the steps yourself. ``command`` is the executable
    (a path or an argv prefix such as ``[sys.executable, "provider.py"]``; relative
    paths are resolved now, since the provider runs in a scratch directory).

    What the provider sends back is kept: :attr:`events` (``/publish``),
    :attr:`logs` (``/log``, also re-logged on ``plugwire.drp.<name>``) and
    :attr:`leaving` (``/leaving``, after which the host stops the provider).
    """

    def __init__(
        self,
        command: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        name: str | None = None,
        endpoint: str = "https://127.0.0.1:8092",
        token: str = "",
        fileserver: str = "",
        webroot: str = "",
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        objects: ObjectSource | None = None,
        ready_timeout: float = 10.0,
        call_timeout: float = 30.0,
        define_timeout: float = 20.0,
        stop_grace: float = 5.0,
        limits: Limits = DEFAULT_LIMITS,
        on_event: Callable[[Event], None] | None = None,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> None:
        if isinstance(command, (str, os.PathLike)):
            self.argv = [os.fspath(command)]
        else:
            self.argv = [os.fspath(c) for c in command]
        if not self.argv:
            raise PluginStartError("empty provider command", step="start")
        # The provider runs in a scratch directory: pin relative paths now.
        self.argv = [
            os.path.abspath(a) if "/" in a and not os.path.isabs(a) and os.path.exists(a) else a
            for a in self.argv
        ]
        self.name = name or Path(self.argv[-1]).name
        base = {k: v for k, v in os.environ.items() if k in _PASS_ENV}
        self.env = {
            **(dict(os.environ) if inherit_env else base),
            **(env or {}),
            "RS_ENDPOINT": endpoint,
            "RS_TOKEN": token,
            "RS_FILESERVER": fileserver,
            "RS_WEBROOT": webroot,
        }
        self.cwd = cwd
        self.objects = objects
        self.ready_timeout = ready_timeout
        self.call_timeout = call_timeout
        self.define_timeout = define_timeout
        self.stop_grace = stop_grace
        self.limits = limits
        self.on_event = on_event
        self.on_log = on_log
        self.definition: PluginProvider | None = None
        self.events: list[Event] = []
        self.logs: list[LogLine] = []
        self.leaving: Error | None = None
        self.left = anyio.Event()
        self.junk: list[str] = []
        self.socket_dir: Path | None = None
        self.logger = logging.getLogger(f"plugwire.drp.{self.name}")
        self._proc: PluginProcess | None = None
        self._client: HttpClient | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._server_scope: anyio.CancelScope | None = None
        self._stopping = False
        self._scratch: Path | None = None

    # -- one-shot commands -----------------------------------------------------

    async def _run(self, args: Sequence[str], step: str) -> str:
        """Run a one-shot provider command (``define``, ``unpack``) to completion
        and return its stdout; a :class:`PluginProcess`, so it cannot outlive us."""
        lines: list[str] = []
        proc = PluginProcess(
            [*self.argv, *args],
            env=self.env,
            name=self.name,
            cwd=self.cwd,
            on_stdout=lines.append,
        )
        try:
            async with proc:
                with anyio.move_on_after(self.define_timeout) as scope:
                    status = await proc.wait()
        except PluginStartError as exc:
            exc.step = step
            raise
        if scope.cancelled_caught:
            raise PluginTimeoutError(
                f"provider did not finish {step} within {self.define_timeout} s",
                peer=self.name,
                step=step,
            )
        if status != 0:
            raise proc.exit_error(step)
        return "\n".join(lines)

    async def define(self) -> PluginProvider:
        """Run ``define``; parse and validate the definition (also kept in
        :attr:`definition`). Raises :class:`ProtocolError` for output that is not
        a valid ``models.PluginProvider``."""
        out = await self._run(["define"], "define")
        try:
            doc = json.loads(out)
        except json.JSONDecodeError as exc:
            raise ProtocolError(
                f"define printed something that is not JSON: {exc}",
                peer=self.name,
                step="define",
                expected="models.PluginProvider JSON",
                seen=out.strip()[:200],
            ) from None
        try:
            definition = PluginProvider.from_json(doc)
        except ProtocolError as exc:
            exc.peer, exc.step = self.name, "define"
            raise
        problems = []
        if not definition.name:
            problems.append("Name is empty")
        if definition.plugin_version < 1:
            problems.append(f"PluginVersion {definition.plugin_version} is not a version")
        for action in definition.available_actions:
            if not action.command:
                problems.append("an AvailableAction has no Command")
        commands = [(a.model, a.command) for a in definition.available_actions]
        if len(set(commands)) != len(commands):
            problems.append("an AvailableAction is declared twice")
        if problems:
            raise ProtocolError(
                "invalid provider definition: " + "; ".join(problems),
                peer=self.name,
                step="define",
                expected="a valid models.PluginProvider",
                seen=doc,
            )
        self.definition = definition
        return definition

    async def unpack(self, directory: str | os.PathLike[str]) -> Path:
        """Run ``unpack DIR`` (the directory is created); return it."""
        path = Path(directory)
        os.makedirs(path, exist_ok=True)
        await self._run(["unpack", os.fspath(path)], "unpack")
        return path

    # -- the listening provider ------------------------------------------------

    async def __aenter__(self) -> ProviderHost:
        if self.definition is None:
            await self.define()
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Serve the server API, run ``listen TO FROM`` and wait for ``READY!``.

        Raises :class:`PluginTimeoutError` without ``READY!`` in time and
        :class:`PluginStartError` when the provider exits first; both name any
        junk it printed.
        """
        if self._proc is not None:
            raise PluginStartError("provider already started", peer=self.name, step="listen")
        self.socket_dir = Path(tempfile.mkdtemp(prefix="drp-"))
        os.chmod(self.socket_dir, stat.S_IRWXU)
        to_sock = self.socket_dir / "to.sock"
        from_sock = self.socket_dir / "from.sock"
        cwd = self.cwd
        if cwd is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="drp-scratch-"))
            cwd = self._scratch
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            server = HttpServer(
                self._server_api, limits=self.limits, name=f"drp server for {self.name}"
            )
            await tg.start(self._serve, server, Address("unix", str(from_sock)))
            proc = PluginProcess(
                [*self.argv, "listen", str(to_sock), str(from_sock)],
                env=self.env,
                name=self.name,
                cwd=cwd,
                polite_signal=signal.SIGTERM,
                stdout_buffer=10000,
            )
            self._proc = proc
            await proc.start(tg)
            await self._wait_ready(proc, to_sock)
            self._client = HttpClient(
                Address("unix", str(to_sock)),
                limits=self.limits,
                timeout=self.call_timeout,
                peer=self.name,
            )
            tg.start_soon(self._watch, proc)
        except BaseException:
            await self.aclose()
            raise

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
        if not self._stopping:
            self.logger.error("%s", proc.exit_error("running"))

    async def wait(self) -> int:
        """Wait for the provider process to exit; return its exit status."""
        if self._proc is None:
            raise ClosedError("provider is not started", peer=self.name, step="wait")
        return await self._proc.wait()

    @property
    def pid(self) -> int:
        """The process id of the listening provider."""
        if self._proc is None:
            raise ClosedError("provider is not started", peer=self.name, step="pid")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    @property
    def error(self) -> PluginExitedError | None:
        """Why the provider died, if it exited without being stopped."""
        if self._proc is None or self._stopping:
            return None
        return self._proc.error

    # -- calls into the provider -----------------------------------------------

    def _alive(self, step: str) -> tuple[PluginProcess, HttpClient]:
        proc, client = self._proc, self._client
        if proc is None or client is None:
            raise ClosedError("provider is not started", peer=self.name, step=step)
        if proc.done.is_set():
            raise proc.exit_error(step)
        return proc, client

    async def _post(self, step: str, body: Any) -> Response:
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
            tg.cancel_scope.cancel()
        if proc.done.is_set() and (reply is None or step != "stop"):
            raise proc.exit_error(step)
        if reply is None:
            assert failure is not None
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
        required = self.definition.required_params if self.definition else ()
        missing = [name for name in required if name not in params]
        if missing:
            raise ConfigRefusedError(
                f"Missing required params for {self.name}: {', '.join(missing)}",
                code=400,
                key=self.name,
                messages=[f"Missing required parameter: {name}" for name in missing],
                peer=self.name,
                step="config",
            )
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
        declared = self.definition.find_action(action.command, model_type)
        if declared is None:
            known = sorted({a.command for a in self.definition.available_actions})
            raise ActionRefusedError(
                f"Unknown action: {action.command} (the provider declares {known})",
                code=404,
                key=self.name,
                messages=[f"Unknown action: {action.command}"],
                peer=self.name,
                step=f"action {action.command}",
            )
        missing = [p for p in declared.required_params if p not in action.params]
        if missing:
            raise ActionRefusedError(
                f"Missing required params for {action.command}: {', '.join(missing)}",
                code=400,
                key=self.name,
                peer=self.name,
                step=f"action {action.command}",
            )
        if declared.model and action.model is None:
            raise ActionRefusedError(
                f"Action {action.command} needs a {declared.model} object",
                code=400,
                key=self.name,
                peer=self.name,
                step=f"action {action.command}",
            )

    async def publish(self, event: Event) -> None:
        """POST ``/publish`` (only for providers with ``HasPublish``)."""
        reply = await self._post("publish", event.to_json())
        self._raise_for(reply, "publish")

    async def stop(self) -> int | None:
        """POST ``/stop`` and wait for the exit; SIGTERM then SIGKILL a provider
        still running after ``stop_grace``. Returns the exit status. A provider that
        exits before finishing its reply (the Go library calls ``os.Exit`` right
        after writing it) stopped cleanly."""
        proc = self._proc
        if proc is None:
            return None
        self._stopping = True
        if not proc.done.is_set() and self._client is not None:
            with anyio.move_on_after(self.stop_grace):
                try:
                    reply = await self._post("stop", None)
                    self._raise_for(reply, "stop")
                except (PluginExitedError, ConnectionClosedError, PluginTimeoutError):
                    pass
                await proc.done.wait()
        await proc.terminate(min(self.stop_grace, 2.0))
        return proc.returncode

    async def aclose(self) -> None:
        """Stop the provider if it runs and release sockets and directories.

        Must be called from the task that called :meth:`start` (it closes the
        task group opened there)."""
        with anyio.CancelScope(shield=True):
            if self._proc is not None and not self._proc.done.is_set():
                with contextlib.suppress(PlugwireError):
                    await self.stop()
            if self._client is not None:
                await self._client.aclose()
            if self._server_scope is not None:
                self._server_scope.cancel()
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        for path in (self.socket_dir, self._scratch):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)

    # -- the server API the provider calls -------------------------------------

    async def _server_api(self, request: Request) -> Response:
        path = request.path
        if not path.startswith(SERVER_API + "/"):
            return _error_response(Error(code=404, type=request.method, key=path))
        what = path[len(SERVER_API) + 1 :]
        if request.method == "GET" and what.startswith("objects/"):
            return await self._objects(what[len("objects/") :])
        if request.method != "POST" or what not in ("publish", "leaving", "log"):
            return _error_response(Error(code=404, type=request.method, key=path))
        ctype = request.content_type
        if "APPLICATION/JSON" not in ctype.upper():
            return _error_response(
                Error(code=400, type=request.method, messages=(f"Invalid content type: {ctype}",))
            )
        try:
            doc = json.loads(request.body) if request.body else None
            if what == "publish":
                event = Event.from_json(doc or {})
                self.events.append(event)
                if self.on_event is not None:
                    self.on_event(event)
            elif what == "log":
                line = LogLine.from_json(doc or {})
                self.logs.append(line)
                if self.on_log is not None:
                    self.on_log(line)
                self.logger.log(_PY_LEVEL.get(line.level, logging.INFO), "%s", line.message)
            else:
                self.leaving = Error.from_json(doc) if isinstance(doc, dict) else Error(code=200)
                self.left.set()
                if self._tg is not None and not self._stopping:
                    self._tg.start_soon(self._stop_quietly)
        except (json.JSONDecodeError, UnicodeDecodeError, PlugwireError) as exc:
            return _error_response(Error(code=400, type=request.method, messages=(str(exc),)))
        return Response.json(Error(code=200).to_json(), 200)

    async def _stop_quietly(self) -> None:
        with contextlib.suppress(PlugwireError):
            await self.stop()

    async def _objects(self, prefix: str) -> Response:
        declared = self.definition.store_objects if self.definition else {}
        if declared and prefix not in declared:
            return _error_response(
                Error(
                    code=403,
                    type="GET",
                    key=prefix,
                    messages=(f"{prefix} is not in the provider's StoreObjects",),
                )
            )
        source = self.objects
        items: Sequence[Any]
        if source is None:
            items = []
        elif isinstance(source, Mapping):
            items = source.get(prefix, [])
        else:
            got = source(prefix)
            items = await got if isinstance(got, Awaitable) else got
        return Response.json(list(items), 200)
