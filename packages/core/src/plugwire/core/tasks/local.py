"""The local-process engine: each task is a process on this machine.

The engine's payload part is ``command`` (argv, required) and ``workingDir``
(optional: relative paths are created inside the task's fresh directory, absolute ones
must exist). The environment is explicit: ``PATH``, ``LANG``, ``TASK_ID``, ``RUN_ID``,
the engine's ``env``, then what plugins set (the ``env`` plugin); the host's own
environment is passed only with ``inherit_env=True``. stdout and stderr go, line by
line, to the task log. The process runs in its own session; :meth:`Sandbox.abort`
signals its whole process group (SIGTERM, then SIGKILL after ``kill_grace``).
A command that does not exist or cannot be executed is a
:class:`~plugwire.core.tasks.errors.MalformedPayloadError` (the payload's fault).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from ..errors import ConfigError
from .context import TaskContext
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder, SandboxOptions
from .errors import MalformedPayloadError, NamingConflictError
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

_MAX_LINE = 64 * 1024


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
    ``keep_working_dirs``. ``env`` adds variables to every task.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        kill_grace: float = 2.0,
        keep_working_dirs: bool = False,
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
            try:
                process = await anyio.open_process(
                    self._command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise MalformedPayloadError(
                    f"command not found: {self._command[0]!r}", step="start_sandbox"
                ) from None
            except PermissionError:
                raise MalformedPayloadError(
                    f"command is not executable: {self._command[0]!r}", step="start_sandbox"
                ) from None
            except OSError as exc:
                if exc.errno in (errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR, errno.ELOOP):
                    raise MalformedPayloadError(
                        f"cannot execute {self._command[0]!r}: {exc.strerror}",
                        step="start_sandbox",
                    ) from None
                raise
        except BaseException:
            if not engine.keep_working_dirs:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(task_dir, ignore_errors=True))
            raise
        self._context.log(f"started {self._command!r} in {cwd} (pid {process.pid})")
        sandbox = _LocalSandbox(engine, self._context, process, task_dir, cwd)
        sandbox.start()
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


class _LocalSandbox(Sandbox):
    def __init__(
        self,
        engine: LocalProcessEngine,
        context: TaskContext,
        process: anyio.abc.Process,
        task_dir: Path,
        cwd: Path,
    ) -> None:
        self._engine = engine
        self._context = context
        self._process = process
        self._task_dir = task_dir
        self._cwd = cwd
        self._exited = anyio.Event()
        self._drained = anyio.Event()
        self._aborted = False
        self._returncode: int | None = None

    def start(self) -> None:
        self._context.start_soon(self._reap, name=f"reap {self._process.pid}")
        self._context.start_soon(self._pump, name=f"pump {self._process.pid}")

    async def _reap(self) -> None:
        self._returncode = await self._process.wait()
        self._exited.set()

    async def _pump(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        buffer = b""
        try:
            async for chunk in stream:
                buffer += chunk
                while True:  # complete lines; longer ones are split at _MAX_LINE bytes
                    end = buffer.find(b"\n")
                    if 0 <= end <= _MAX_LINE:
                        line, buffer = buffer[:end], buffer[end + 1 :]
                    elif len(buffer) > _MAX_LINE:
                        line, buffer = buffer[:_MAX_LINE], buffer[_MAX_LINE:]
                    else:
                        break
                    self._write(line)
            if buffer:
                self._write(buffer)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            self._drained.set()

    def _write(self, line: bytes) -> None:
        if not self._context.log_closed:
            self._context.write_log(line.decode("utf-8", "replace").rstrip("\r"))

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def wait_for_result(self) -> ResultSet:
        await self._exited.wait()
        with anyio.move_on_after(1.0):  # children may still hold stdout open
            await self._drained.wait()
        if not self._drained.is_set():
            self._signal(signal.SIGKILL)
            await self._drained.wait()
        return _LocalResult(
            self._engine, self._returncode, self._aborted, self._task_dir, self._cwd
        )

    async def abort(self) -> None:
        if self._exited.is_set():
            return
        self._aborted = True
        self._signal(signal.SIGTERM)
        with anyio.move_on_after(self._engine.kill_grace):
            await self._exited.wait()
        if not self._exited.is_set():
            self._signal(signal.SIGKILL)
            await self._exited.wait()


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
