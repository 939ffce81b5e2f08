"""The local-process engine: each task is a process on this machine.

The engine's payload part is ``command`` (argv, required) and ``workingDir``
(optional: relative paths are created inside the task's fresh directory, absolute ones
must exist). The environment is explicit: ``PATH``, ``LANG``, ``TASK_ID``, ``RUN_ID``,
the engine's ``env``, then what plugins set (the ``env`` plugin); the host's own
environment is passed only with ``inherit_env=True``. stdout and stderr go, line by
line, to the task log. The process is a :class:`~plugwire.core.process.PluginProcess`
(the one spawn path): it runs in its own session and dies with the host, even a
SIGKILLed one (PR_SET_PDEATHSIG, set by ``setpriv --pdeathsig`` or, without it or
with ``use_setpriv=False``, by ``prctl`` in the child); :meth:`Sandbox.abort` signals
its whole process group (SIGTERM, then SIGKILL after ``kill_grace``), and what it
leaves running is killed when it exits.
A command that does not exist or cannot be executed is a
:class:`~plugwire.core.tasks.errors.MalformedPayloadError` (the payload's fault).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..errors import ConfigError, PluginStartError
from ..process import PluginProcess
from .context import TaskContext
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder, SandboxOptions
from .errors import FatalInternalError, MalformedPayloadError, NamingConflictError
from .schema import JsonSchema, object_schema

__all__ = ["LocalProcessEngine"]

_PAYLOAD = object_schema(
    {
        "command": {
            "title": "Command",
            "description": "The program and its arguments.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
        },
        "workingDir": {
            "title": "Working directory",
            "description": "Relative: created in the task directory. Absolute: must exist.",
            "type": "string",
            "minLength": 1,
        },
    },
    required=["command"],
)

_MAX_LINE = 64 * 1024  # bytes per task-log line


def _inside(base: Path, rel: str, *, what: str) -> Path:
    """``base / rel`` when it stays inside ``base``, else MalformedPayloadError."""
    candidate = Path(rel)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise MalformedPayloadError(
            f"{what} {rel!r} must be a relative path inside the working directory",
            step=what,
        )
    full = (base / candidate).resolve()
    if not full.is_relative_to(base.resolve()):
        raise MalformedPayloadError(f"{what} {rel!r} leaves the working directory", step=what)
    return full


class LocalProcessEngine(Engine):
    """Runs each task's ``command`` as a local process in a fresh directory.

    ``root`` holds the per-task directories (default: a ``plugwire-tasks`` folder in
    the temp dir); they are removed when the task is disposed unless
    ``keep_working_dirs``. ``env`` adds variables to every task. ``use_setpriv=False``
    sets PDEATHSIG with ``prctl`` in the child instead of util-linux ``setpriv``.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        kill_grace: float = 2.0,
        keep_working_dirs: bool = False,
        use_setpriv: bool = True,
    ) -> None:
        if kill_grace < 0:
            raise ConfigError("kill_grace must be >= 0", step="engine", seen=kill_grace)
        self.root = (
            Path(root) if root is not None else Path(tempfile.gettempdir()) / "plugwire-tasks"
        )
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.kill_grace = kill_grace
        self.keep_working_dirs = keep_working_dirs
        self.use_setpriv = use_setpriv

    def payload_schema(self) -> JsonSchema:
        return _PAYLOAD

    async def new_sandbox_builder(self, options: SandboxOptions) -> SandboxBuilder:
        return _LocalBuilder(self, options.context, options.payload)

    def base_env(self, context: TaskContext) -> dict[str, str]:
        if self.inherit_env:
            env = dict(os.environ)
        else:
            env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
        env.update({"TASK_ID": context.task_id, "RUN_ID": str(context.run_id)})
        env.update(self.env)
        return env


class _LocalBuilder(SandboxBuilder):
    def __init__(
        self, engine: LocalProcessEngine, context: TaskContext, payload: Mapping[str, Any]
    ):
        self._engine = engine
        self._context = context
        self._command = [str(a) for a in payload["command"]]
        self._working_dir = payload.get("workingDir")
        self._env: dict[str, str] = {}

    def set_environment_variable(self, name: str, value: str) -> None:
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise MalformedPayloadError(
                f"invalid environment variable {name!r}: names must be non-empty without"
                " '=' or NUL, values without NUL",
                step="set_environment_variable",
            )
        if name in self._env:
            raise NamingConflictError(
                f"environment variable {name!r} has already been set",
                step="set_environment_variable",
                seen=name,
            )
        self._env[name] = value

    async def start_sandbox(self) -> Sandbox:
        engine = self._engine
        await anyio.to_thread.run_sync(lambda: engine.root.mkdir(parents=True, exist_ok=True))
        prefix = f"{self._context.task_id}-{self._context.run_id}-"
        task_dir = Path(
            await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix=prefix, dir=engine.root))
        )
        try:
            cwd = await anyio.to_thread.run_sync(self._working_directory, task_dir)
            env = {**engine.base_env(self._context), **self._env}
            task_group = self._context.task_group  # raises ClosedError when not running
            path = await anyio.to_thread.run_sync(_resolve, self._command[0], env, cwd)
            sandbox = _LocalSandbox(engine, self._context, task_dir, cwd)
            process = PluginProcess(
                [path, *self._command[1:]],
                env=env,
                name=f"task {self._context.task_id}/{self._context.run_id}",
                cwd=cwd,
                merge_stderr=True,
                on_output=sandbox.feed,
                new_session=True,
                use_setpriv=engine.use_setpriv,
            )
            try:
                await process.start(task_group)
            except PluginStartError as exc:
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    raise _start_error(self._command[0], cause) from None
                raise MalformedPayloadError(
                    f"command not found: {self._command[0]!r}", step="start_sandbox"
                ) from None
            sandbox.attach(process)
        except BaseException:
            if not engine.keep_working_dirs:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(task_dir, ignore_errors=True))
            raise
        self._context.log(f"started {self._command!r} in {cwd} (pid {process.pid})")
        return sandbox

    def _working_directory(self, task_dir: Path) -> Path:
        if self._working_dir is None:
            return task_dir
        wd = Path(self._working_dir)
        if wd.is_absolute():
            if not wd.is_dir():
                raise MalformedPayloadError(
                    f"working directory {self._working_dir!r} does not exist", step="workingDir"
                )
            return wd
        full = _inside(task_dir, self._working_dir, what="workingDir")
        full.mkdir(parents=True, exist_ok=True)
        return full


def _resolve(command: str, env: Mapping[str, str], cwd: Path) -> str:
    """The executable ``command`` names (PATH lookup as exec does), or MalformedPayloadError."""
    if "/" in command:
        path = os.path.join(cwd, command)
    else:
        found = shutil.which(command, path=env.get("PATH", os.defpath))
        if found is None:
            raise MalformedPayloadError(f"command not found: {command!r}", step="start_sandbox")
        path = found
    if not os.path.exists(path):
        raise MalformedPayloadError(f"command not found: {command!r}", step="start_sandbox")
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise MalformedPayloadError(f"command is not executable: {command!r}", step="start_sandbox")
    return path


def _start_error(command: str, cause: OSError) -> Exception:
    """The error for a task process that could not be spawned."""
    if isinstance(cause, FileNotFoundError):
        return MalformedPayloadError(f"command not found: {command!r}", step="start_sandbox")
    if isinstance(cause, PermissionError):
        return MalformedPayloadError(
            f"command is not executable: {command!r}", step="start_sandbox"
        )
    return FatalInternalError(
        f"cannot start {command!r}: {cause.strerror or cause}", peer="engine", step="start_sandbox"
    )


class _LocalSandbox(Sandbox):
    """The running task: its own session, output fed into the task log."""

    def __init__(
        self,
        engine: LocalProcessEngine,
        context: TaskContext,
        task_dir: Path,
        cwd: Path,
    ) -> None:
        self._engine = engine
        self._context = context
        self._process: PluginProcess | None = None
        self._task_dir = task_dir
        self._cwd = cwd
        self._buffer = b""
        self._aborted = False

    def attach(self, process: PluginProcess) -> None:
        self._process = process

    @property
    def process(self) -> PluginProcess:
        assert self._process is not None
        return self._process

    def feed(self, chunk: bytes) -> None:
        """Raw output (stdout and stderr merged) into task-log lines; lines longer
        than 64 KiB are split."""
        buffer = self._buffer + chunk
        while True:
            end = buffer.find(b"\n")
            if 0 <= end <= _MAX_LINE:
                line, buffer = buffer[:end], buffer[end + 1 :]
            elif len(buffer) > _MAX_LINE:
                line, buffer = buffer[:_MAX_LINE], buffer[_MAX_LINE:]
            else:
                break
            self._write(line)
        self._buffer = buffer

    def _write(self, line: bytes) -> None:
        if not self._context.log_closed:
            self._context.write_log(line.decode("utf-8", "replace").rstrip("\r"))

    async def wait_for_result(self) -> ResultSet:
        process = self.process
        # The process's exit, then its output drained (at most 1 s more: children
        # may still hold stdout open).
        returncode = await process.wait()
        process.signal_leftovers(signal.SIGKILL)  # what the task left running ends with it
        if self._buffer:
            rest, self._buffer = self._buffer, b""
            self._write(rest)
        return _LocalResult(self._engine, returncode, self._aborted, self._task_dir, self._cwd)

    async def abort(self) -> None:
        process = self.process
        if process.done.is_set():
            return
        self._aborted = True
        process.expect_exit()
        process.signal_group(signal.SIGTERM)
        with anyio.move_on_after(self._engine.kill_grace):
            await process.done.wait()
        if not process.done.is_set():
            process.signal_group(signal.SIGKILL)
            await process.done.wait()


class _LocalResult(ResultSet):
    def __init__(
        self,
        engine: LocalProcessEngine,
        returncode: int | None,
        aborted: bool,
        task_dir: Path,
        cwd: Path,
    ) -> None:
        self._engine = engine
        self._returncode = returncode
        self._aborted = aborted
        self._task_dir = task_dir
        self.working_dir = cwd

    @property
    def success(self) -> bool:
        return self._returncode == 0 and not self._aborted

    @property
    def exit_code(self) -> int | None:
        return self._returncode

    @property
    def aborted(self) -> bool:
        return self._aborted

    async def extract_file(self, path: str) -> Path:
        full = _inside(self.working_dir, path, what="artifact path")
        if not await anyio.to_thread.run_sync(full.is_file):
            raise FileNotFoundError(errno.ENOENT, "no such file in the working directory", path)
        return full

    async def extract_folder(self, path: str) -> Path:
        full = _inside(self.working_dir, path, what="artifact path")
        if not await anyio.to_thread.run_sync(full.is_dir):
            raise FileNotFoundError(errno.ENOENT, "no such folder in the working directory", path)
        return full

    async def dispose(self) -> None:
        if not self._engine.keep_working_dirs:
            task_dir = self._task_dir
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(task_dir, ignore_errors=True))
