"""One plugin child process: clean start, parsed stderr, polite stop, no orphans.

:class:`PluginProcess` starts a child with an explicit environment (the host's own
environment is *not* inherited unless asked), turns each stderr line into a
``logging`` record on ``plugwire.plugin.<name>`` (hclog JSON and ``[LEVEL]`` prefixes
understood), buffers stdout lines for handshake readers, and stops the child with the
protocol's polite signal followed by SIGKILL after a grace period.

It runs on asyncio and trio alike: pipes are non-blocking file descriptors waited on
with :func:`anyio.wait_readable`, and the exit is seen through a Linux pidfd (polling
elsewhere).

No orphans: on Linux the child gets ``PR_SET_PDEATHSIG(SIGKILL)``, so it dies when the
host dies, even by SIGKILL. The kernel ties that signal to the *thread* that forked
the child, so :meth:`PluginProcess.start` forks from the calling thread — the event
loop's, which lives as long as the host. A plugin that wants a second signal can
watch its stdin reach EOF (``stdin=True``): the pipe closes when the host dies.

How the signal is set matters. Running Python code between fork and exec (a
``preexec_fn``) forces a real ``fork()``, whose atfork handlers can crash the child
in a host where gRPC is busy (grpc/grpc#43055). So the child is started through
util-linux's ``setpriv --pdeathsig KILL`` (present on every Debian-like system), which
lets :class:`subprocess.Popen` use ``vfork``; ``preexec_fn`` is only the fallback, and
the only way when ``fd_map`` must renumber descriptors.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal as _signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from ._exit import describe_exit, wait_exit
from ._pipes import MAX_LINE_BYTES, ChildOutput, write_all
from .errors import ClosedError, PluginExitedError, PluginStartError, PluginTimeoutError
from .logs import forward_log_line

__all__ = ["PluginProcess"]

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL | None:
    # Loaded in the parent: loading a library between fork and exec is unsafe.
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


_setpriv: str | bool | None = False  # False: not looked up yet


def _setpriv_path() -> str | None:
    """util-linux ``setpriv`` if it supports ``--pdeathsig`` (Linux only)."""
    global _setpriv
    if _setpriv is False:
        found = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if found is not None:
            try:
                probe = subprocess.run(
                    [found, "--pdeathsig", "KILL", "--", "true"], capture_output=True, timeout=10
                )
                found = found if probe.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                found = None
        _setpriv = found
    return _setpriv if isinstance(_setpriv, str) else None


def _resolve_executable(program: str, env: Mapping[str, str]) -> str | None:
    """Where ``program`` is, searched as exec would with ``env``'s PATH."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) and os.path.isfile(program) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def _child_setup(parent_pid: int, fd_map: Mapping[int, int]) -> Callable[[], None]:
    libc = _load_libc()
    moves = sorted(fd_map.items())

    def setup() -> None:  # runs in the child between fork and exec
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the host died before prctl took effect
            os._exit(1)
        if moves:
            # Park every source above the targets first, so that moving one never
            # clobbers another's source; the parked copies close at exec.
            parked = [(child, fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 256)) for child, src in moves]
            for child, src in parked:
                os.dup2(src, child, inheritable=True)

    return setup


class PluginProcess:
    """A plugin child process.

    Use as ``async with PluginProcess([...], env={...}, name="kv") as proc:`` (start on
    enter, :meth:`terminate` on exit), or call :meth:`start` with a task group you
    own (the way :class:`~plugwire.core.host.Host` does) and :meth:`aclose` later.

    Arguments:
        argv: the command and its arguments.
        env: the child's whole environment (plus the host's when ``inherit_env``).
        name: names the plugin in errors and in its logger.
        stdin: give the child a pipe on stdin (:meth:`write_stdin`,
            :meth:`close_stdin`); otherwise it reads ``/dev/null``.
        capture_stdout: buffer stdout lines for :meth:`readline_stdout` (or hand them
            to ``on_stdout``); otherwise stdout goes to ``/dev/null``.
        pass_fds: file descriptors the child inherits under the same numbers.
        fd_map: ``{child_fd: host_fd}``: the child gets ``host_fd`` as ``child_fd``
            (NRI hands a runtime-launched plugin its socket as fd 3 this way).
        polite_signal: what :meth:`terminate` sends first (``None``: send nothing and
            only wait, e.g. when the polite request is an RPC or closing stdin).
        new_session: start the child in its own session, so a terminal's Ctrl-C goes
            to the host only, and SIGKILL reaches the child's own children.
        merge_stderr: send the child's stderr into its stdout pipe (a task log wants
            both, interleaved as written); nothing is then forwarded to ``logging``.
        on_output: receive stdout (with ``merge_stderr``, stderr too) as raw byte
            chunks, exactly as read, instead of decoded lines; :meth:`readline_stdout`
            then sees nothing.
        use_setpriv: set PDEATHSIG through util-linux ``setpriv`` when installed (the
            default); ``False`` forces the in-child ``prctl`` fallback.
        max_line: the longest stdout/stderr line kept, in bytes (default 256 KiB); the
            rest of a longer line is dropped and the kept part ends with a
            ``[plugwire: line truncated, N bytes dropped]`` marker, so a plugin
            flooding its output cannot grow the host's memory.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        name: str,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
        capture_stdout: bool = True,
        pass_fds: Sequence[int] = (),
        fd_map: Mapping[int, int] | None = None,
        inherit_env: bool = False,
        polite_signal: _signal.Signals | None = _signal.SIGTERM,
        new_session: bool = True,
        logger: logging.Logger | None = None,
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        stderr_tail: int = 20,
        stdout_buffer: int = 1000,
        merge_stderr: bool = False,
        on_output: Callable[[bytes], None] | None = None,
        use_setpriv: bool = True,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        if not argv:
            raise PluginStartError("empty command", peer=name, step="start")
        self.argv = [os.fspath(a) for a in argv]
        self.name = name
        self.env = dict(os.environ, **env) if inherit_env else dict(env)
        self.cwd = cwd
        self.polite_signal = polite_signal
        self.logger = logger or logging.getLogger(f"plugwire.plugin.{name}")
        self._want_stdin = stdin
        self._capture_stdout = capture_stdout
        self._fd_map = dict(fd_map or {})
        if any(child in (0, 1, 2) for child in self._fd_map):
            raise PluginStartError(
                "fd_map cannot replace stdin, stdout or stderr",
                peer=name,
                step="start",
                expected="child descriptors >= 3",
                seen=sorted(self._fd_map),
            )
        self._pass_fds = tuple(sorted(set(pass_fds) | set(self._fd_map)))
        self._new_session = new_session
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._merge_stderr = merge_stderr
        self._on_output = on_output
        self._use_setpriv = use_setpriv
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=stderr_tail)
        self._output = ChildOutput(stdout_buffer=stdout_buffer, max_line=max_line)
        self._popen: subprocess.Popen[bytes] | None = None
        self._stdin_fd: int | None = None
        self._done = anyio.Event()
        self._returncode: int | None = None
        self._stopping = False
        self._own_tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle -------------------------------------------------------------

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start the child; background readers run in ``task_group``.

        Raises :class:`PluginStartError` when the command cannot be executed.
        """
        if self._popen is not None:
            raise PluginStartError("already started", peer=self.name, step="start")
        argv = list(self.argv)
        preexec: Callable[[], None] | None = None
        setpriv = None if self._fd_map or not self._use_setpriv else _setpriv_path()
        if setpriv is not None:
            program = _resolve_executable(argv[0], self.env)
            if program is None:
                raise PluginStartError(
                    "cannot execute plugin: no such executable",
                    peer=self.name,
                    step="start",
                    expected="an executable command",
                    seen=" ".join(self.argv),
                )
            argv = [setpriv, "--pdeathsig", "KILL", "--", program, *argv[1:]]
        else:
            preexec = _child_setup(os.getpid(), self._fd_map)
        try:
            # A synchronous fork from the loop thread, on purpose: PR_SET_PDEATHSIG is
            # tied to the forking thread, and this one lives as long as the host.
            self._popen = subprocess.Popen(  # noqa: ASYNC220
                argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.PIPE if self._want_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self._capture_stdout else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self._merge_stderr else subprocess.PIPE,
                pass_fds=self._pass_fds,
                start_new_session=self._new_session,
                preexec_fn=preexec,
                close_fds=True,
            )
        except OSError as exc:
            raise PluginStartError(
                f"cannot execute plugin: {exc.strerror or exc}",
                peer=self.name,
                step="start",
                expected="an executable command",
                seen=" ".join(self.argv),
            ) from exc
        popen = self._popen
        if popen.stdin is not None:
            self._stdin_fd = popen.stdin.fileno()
            os.set_blocking(self._stdin_fd, False)
        output = self._output
        # No stderr pipe when merged into stdout: stderr is then done at once.
        output.watch(task_group, popen.stderr, self._stderr_line, output.stderr_done)
        output.watch(
            task_group, popen.stdout, self._stdout_line, output.stdout_done, self._on_output
        )
        task_group.start_soon(self._watch_exit)
        self.logger.debug("started %s (pid %d)", " ".join(self.argv), popen.pid)

    async def __aenter__(self) -> PluginProcess:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._own_tg = tg
        try:
            await self.start(tg)
        except BaseException:
            self._own_tg = None
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._own_tg = self._own_tg, None
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            # Our task group only runs the pipe readers and the exit watcher; the
            # body's own exception propagates as it is, not in an ExceptionGroup.
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        return None

    async def aclose(self, grace: float = 2.0) -> None:
        """Terminate the child if it still runs (see :meth:`terminate`)."""
        await self.terminate(grace)

    # -- state -----------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise ClosedError("process not started", peer=self.name, step="pid")
        return self._popen.pid

    @property
    def done(self) -> anyio.Event:
        """Set once the child has exited and its stderr is drained."""
        return self._done

    @property
    def running(self) -> bool:
        return self._popen is not None and not self._done.is_set()

    @property
    def returncode(self) -> int | None:
        """Exit status once exited; negative means killed by that signal."""
        return self._returncode

    @property
    def stderr_tail(self) -> list[str]:
        """The last stderr lines (20 by default)."""
        return list(self._stderr_tail)

    @property
    def error(self) -> PluginExitedError | None:
        """Why the plugin died, if it exited without being asked to stop."""
        if not self._done.is_set() or self._stopping:
            return None
        return self.exit_error()

    def exit_error(self, step: str | None = None) -> PluginExitedError:
        """A :class:`PluginExitedError` describing the exit (status and stderr tail)."""
        rc = self._returncode
        return PluginExitedError(
            f"plugin {self.name!r} {describe_exit(rc)}",
            returncode=rc,
            stderr_tail=self.stderr_tail,
            peer=self.name,
            step=step,
        )

    async def wait(self) -> int:
        """Wait for the child to exit; return its exit status."""
        await self._done.wait()
        assert self._returncode is not None
        return self._returncode

    # -- stdio -----------------------------------------------------------------

    async def readline_stdout(self, timeout: float | None = None) -> str | None:
        """The next stdout line (without newline), or ``None`` at EOF.

        Raises :class:`PluginTimeoutError` when no line arrives within ``timeout``.
        """
        with anyio.move_on_after(timeout) as scope:
            return await self._output.next_stdout_line()
        assert scope.cancelled_caught
        raise PluginTimeoutError(
            f"no output line from plugin {self.name!r} within {timeout} s",
            peer=self.name,
            step="read stdout",
        )

    async def write_stdin(self, data: bytes) -> None:
        """Write all of ``data`` to the child's stdin.

        Raises :class:`ClosedError` without a stdin pipe or after :meth:`close_stdin`,
        :class:`PluginExitedError` when the child is gone.
        """
        fd = self._stdin_fd
        if fd is None:
            raise ClosedError("plugin stdin is not open", peer=self.name, step="write stdin")
        try:
            await write_all(fd, data)
        except BrokenPipeError:
            raise self.exit_error("write stdin") from None

    async def close_stdin(self) -> None:
        """Close the child's stdin: it reads EOF (a polite stop for some protocols)."""
        fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None and self._popen is not None and self._popen.stdin is not None:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()

    # -- stopping --------------------------------------------------------------

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child if it still runs."""
        if self._popen is not None and self._returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._popen.pid, sig)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group when it has its own session (so
        the plugin's own children get it too), else to the child alone."""
        popen = self._popen
        if popen is None or self._returncode is not None:
            return
        if self._new_session:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, sig)
        self.send_signal(sig)

    def signal_leftovers(self, sig: int) -> None:
        """Send ``sig`` to what is left of the child's process group once the child
        itself has exited (its own children still holding the group), so they end
        with it. Only with ``new_session``; a no-op otherwise."""
        popen = self._popen
        if popen is None or not self._new_session:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, sig)

    def expect_exit(self) -> None:
        """Mark the coming exit as asked for, so :attr:`error` stays ``None``."""
        self._stopping = True

    def kill_now(self) -> None:
        """SIGKILL the child (and its group) without waiting; safe with no event loop
        running (the managed registry calls it at interpreter exit)."""
        self._stopping = True
        self.signal_group(_signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL the child (and its process group when it has its own session)."""
        self._stopping = True
        if self._popen is None or self._done.is_set():
            return
        self.signal_group(_signal.SIGKILL)
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await self._done.wait()

    async def terminate(self, grace: float = 2.0, *, close_stdin: bool = True) -> None:
        """Stop the child politely, then SIGKILL it after ``grace`` seconds.

        Polite means: close stdin (when ``close_stdin`` and there is a pipe) and send
        :attr:`polite_signal` (when set). Returns once the child has exited.
        """
        self._stopping = True
        if self._popen is None or self._done.is_set():
            return
        with anyio.CancelScope(shield=True):
            if close_stdin:
                await self.close_stdin()
            if self.polite_signal is not None:
                self.send_signal(self.polite_signal)
            with anyio.move_on_after(grace):
                await self._done.wait()
            if not self._done.is_set():
                self.logger.debug("plugin %r ignored its grace of %s s: SIGKILL", self.name, grace)
                await self.kill()

    # -- background tasks ------------------------------------------------------

    def _stderr_line(self, line: str) -> None:
        self._stderr_tail.append(line)
        if self._on_stderr is not None:
            self._on_stderr(line)
        else:
            forward_log_line(self.logger, line, plugin=self.name)

    def _stdout_line(self, line: str) -> None:
        if self._on_stdout is not None:
            self._on_stdout(line)
            return
        dropped = self._output.push_stdout(line)
        if dropped is not None:
            self.logger.debug("stdout (unread, dropped): %s", dropped)

    async def _watch_exit(self) -> None:
        popen = self._popen
        assert popen is not None
        await wait_exit(popen.pid, popen.poll)
        self._returncode = popen.returncode
        # Drain what the plugin wrote last, so errors carry its final words. A
        # grandchild holding a pipe open must not stall us: stop reading after 1 s.
        with anyio.move_on_after(1.0):
            await self._output.stderr_eof.wait()
            await self._output.stdout_eof.wait()
        await self.close_stdin()
        self._output.close_all()
        self.logger.debug("plugin %r exited with %s", self.name, self._returncode)
        self._done.set()

    def __repr__(self) -> str:
        state = (
            "not started"
            if self._popen is None
            else (
                f"pid {self._popen.pid}"
                if self._returncode is None
                else f"exited {self._returncode}"
            )
        )
        return f"<PluginProcess {self.name!r} {state}>"


def which(command: str) -> Path | None:
    """``shutil.which`` returning a :class:`Path` (a small convenience for hosts)."""
    import shutil

    found = shutil.which(command)
    return Path(found) if found else None
