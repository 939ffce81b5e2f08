"""A plugin's fork server: the same host's later launches fork from an imported copy.

Some hosts start the same plugin binary several times in one command (Terraform
launches a provider three times for a one-resource ``plan``: schema, validate, plan;
four for ``apply``). A Python plugin spends most of each launch importing (the
interpreter, asyncio, grpc, protobuf, cryptography, the plugin's own code), and every
launch repeats it. With a fork server the first launch imports once, forks a small
server that keeps that imported state, and goes on serving as usual. Each later launch
of the same binary by the same host process hands its stdin, stdout and stderr, its
environment, arguments and working directory to that server, which passes them to a
child forked from the imported state ahead of time (a standby, warmed up while the host
started the launch; see :func:`start`); the child serves with exactly what the launch
was given, and the launch (still the process the host started and waits for) relays
signals and exits with the child's status. A forked child never sees what an earlier
launch did at run time: every child starts from the state the first launch had right
after importing.

Lifetime (no orphans): the server lives as long as the host process that launched the
first plugin (it watches it through a Linux pidfd and exits when it dies, SIGKILL
included), and at most :data:`IDLE_SECONDS` after its last child ended. Each child
(the standby too) dies with the server (``PR_SET_PDEATHSIG``) and is SIGKILLed by it
when its launch process goes away; a launch process exits when its host dies. The
server listens on a Linux abstract unix socket (no file) named (:func:`key`) after the
user, the host's pid, the interpreter, the executable (with its modification time) and
the plugin's target; both ends check that the peer runs as the same user
(``SO_PEERCRED``). The only thing it puts on a file system is the standby's warm-up
scratch directory (:func:`warm_dir`, on ``/dev/shm``), removed when it exits.

:func:`delegate` is a launch's first step (nothing heavy imported yet), :func:`start`
the first launch's step once it has imported everything. Set ``PLUGWIRE_FORKSERVER=0``
in the plugin's environment to turn it off (every launch then imports on its own);
it is also off where Linux pidfds are missing. A plugin's main::

    name = forkserver.key("mypkg.plugin:serve")
    forkserver.delegate(name)  # a later launch: served by a fork, exits with its status
    import mypkg.plugin        # the first launch (or no server): import...
    forkserver.start(name)     # ...fork the server; returns here and in every child
    mypkg.plugin.serve()

Only :func:`start` and its server fork; hosts start processes through
:class:`~plugwire.core.process.PluginProcess` only.
"""

from __future__ import annotations

# A later launch runs only key() and delegate(): they use what the interpreter has at
# start-up or loads in well under a millisecond (no typing, socket, signal, json,
# hashlib, selectors: each pulls enum, re or OpenSSL, ~20-30 ms together here). The
# server side, run in a process that has imported everything, uses the full modules.
import _socket
import marshal
import os
import select
import struct
import sys
import zlib

TYPE_CHECKING = False  # not typing's (see above)
if TYPE_CHECKING:
    import selectors
    import socket
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

__all__ = [
    "ENV",
    "IDLE_SECONDS",
    "WARM_SCRATCH",
    "delegate",
    "enabled",
    "forked",
    "key",
    "start",
    "warm_dir",
]

ENV = "PLUGWIRE_FORKSERVER"
"""Environment variable: ``0`` turns the fork server off for a launch."""

IDLE_SECONDS = 60.0
"""A fork server without children exits after this long without a launch."""

_forked = False
_warm_dir: str | None = None
_report_fd = -1  # in a child: the server's end of its launch's connection

WARM_SCRATCH = "/dev/shm"
"""Where a server keeps :func:`warm_dir`: a scratch place no host watches."""
_STDIO = (0, 1, 2)
_HEADER = struct.Struct("!cI")  # b"L" + payload length (launch -> server)
_REPLY = struct.Struct("!ci")  # b"P" + child pid, b"X" + the child's wait status
_CREDS = struct.Struct("3i")  # struct ucred
_FD = struct.Struct("i")  # one descriptor of a hand-off (SCM_RIGHTS)
_PR_SET_PDEATHSIG = 1
_HANDOFF_TIMEOUT = 10.0  # a launch waiting for its child's pid
_RECEIVE_TIMEOUT = 2.0  # the server reading a hand-off (a launch sends it at once)
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether this platform and environment allow a fork server (Linux pidfds, and
    ``PLUGWIRE_FORKSERVER`` not ``0``)."""
    env = os.environ if environ is None else environ
    return (
        env.get(ENV, "1") != "0"
        and sys.platform == "linux"
        and hasattr(os, "pidfd_open")
        and hasattr(_socket, "SO_PEERCRED")
    )


def forked() -> bool:
    """Whether this process is a child a fork server forked for a launch."""
    return _forked


def warm_dir() -> str | None:
    """Inside ``warm`` (see :func:`start`): a private directory (0700) for whatever the
    dry run must put on disk, such as the sockets it listens on, instead of the host's
    temp or socket directory (the host may watch those, and a launch must not see files
    come and go). The server removes it, and everything in it, when it exits; None
    outside a standby's warm-up, or where it could not be made."""
    return _warm_dir


def key(target: str) -> str:
    """The fork server name for ``target`` launched by this process's parent.

    It holds the user id, the parent's pid and checksums of the interpreter, the
    executable (``sys.argv[0]``, with its modification time: a reinstalled plugin gets
    a new server) and ``target``.
    """
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    try:
        stamp = str(os.stat(script).st_mtime_ns)
    except OSError:
        stamp = "-"
    parts = (sys.executable, script + "\0" + stamp, target)
    sums = "".join(f"{zlib.crc32(p.encode('utf-8', 'surrogateescape')):08x}" for p in parts)
    return f"plugwire-forkserver/{os.getuid()}/{os.getppid()}/{sums}"


def _address(name: str) -> str:
    return "\0" + name  # Linux abstract namespace: no file, gone with the socket


def _same_user(sock: _socket.socket) -> bool:
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _CREDS.size)
    _pid, uid, _gid = _CREDS.unpack(creds)
    return bool(uid == os.getuid())


# --- a later launch ---------------------------------------------------------------


def delegate(name: str) -> None:
    """Hand this launch to the fork server ``name`` if one answers; then never return.

    Returns at once, having changed nothing, when no server listens under ``name``,
    when it runs as another user, or when the hand-off fails before a child was
    forked: the caller then imports and serves on its own. Once a child serves the
    launch, this process forwards SIGINT, SIGTERM and SIGHUP to it, and exits with
    the child's exit status (or dies of the signal that killed it); it exits 1 when its
    parent (the host) dies or the server vanishes.
    """
    if not enabled():
        return
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(_address(name))
    except OSError:
        sock.close()
        return
    relay = _Relay()  # from here, signals wait for the child (or for this process)
    try:
        if not _same_user(sock):
            raise ValueError("the fork server runs as another user")
        sock.settimeout(_HANDOFF_TIMEOUT)
        payload = marshal.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        _send_launch(sock, _STDIO, payload)
        kind, child = _REPLY.unpack(_recv_exactly(sock, _REPLY.size))
        if kind == b"X":  # the child served and ended before the server named it
            relay.exit_with(child)
        if kind != b"P":
            raise ValueError(f"fork server answered {kind!r}")
    except (OSError, ValueError, struct.error):
        sock.close()
        relay.cancel()  # serving by itself: the signals that came are its own
        return
    relay.run(sock, child)


class _Relay:
    """A launch's signals, forwarded to its child once the server names it."""

    def __init__(self) -> None:
        # The C module under ``signal``: signal.py builds its enums at import (~5-10 ms
        # here), and a launch must not keep the server waiting for its hand-off.
        import _signal  # type: ignore[import-not-found,unused-ignore]

        self.signal: Any = _signal
        self.child = 0
        self.pending: list[int] = []
        self.saved: dict[int, Any] = {}
        for forwarded in _FORWARDED:
            number = getattr(_signal, forwarded)
            self.saved[number] = _signal.signal(number, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.child:
            _forward(self.child, signum)
        else:
            self.pending.append(signum)

    def cancel(self) -> None:
        """Back to this process's own handlers; signals that came meanwhile are re-sent."""
        for number, handler in self.saved.items():
            self.signal.signal(number, handler)
        for signum in self.pending:
            os.kill(os.getpid(), signum)

    def run(self, sock: _socket.socket, child: int) -> NoReturn:
        """Forward signals to ``child`` until its status comes (from the child as it
        ends, see :func:`_report_exit`, or from the server once it has reaped it); exit
        with it."""
        self.child = child
        for signum in self.pending:
            _forward(child, signum)
        sock.settimeout(None)
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        try:
            host = os.pidfd_open(os.getppid())
            poll.register(host, select.POLLIN)
        except OSError:
            host = -1
        data = b""
        while len(data) < _REPLY.size:
            for fd, _ in poll.poll():
                if fd == host:  # the host died: so does its launch (and the child)
                    os._exit(1)
                try:
                    chunk = sock.recv(_REPLY.size - len(data))
                except InterruptedError:
                    continue
                if not chunk:
                    os._exit(1)
                data += chunk
        _kind, status = _REPLY.unpack(data)
        self.exit_with(status)

    def exit_with(self, status: int) -> NoReturn:
        """End this launch as its child ended (``status`` as from :func:`os.waitpid`)."""
        signal = self.signal
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):  # SIGKILL, SIGSTOP: no handler to reset
                pass
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _report_exit(code: int) -> None:
    """In a child, as it ends with ``code`` (:func:`plugwire.core._fastexit.exit_process`):
    let go of the launch's stdio and tell the launch its status right away, on the
    launch's connection. The launch exits at once instead of when the server has seen
    this process torn down and reaped it (4-6 ms later: a served child holds a large
    address space and grpc's threads). A host such as go-plugin's waits for its plugin's
    stderr to close, then for the process it started to exit. The server still reports
    the status once it reaps the child; the launch has gone by then."""
    fd = _report_fd
    if fd < 0:
        return
    _null_stdio()
    os.write(fd, _REPLY.pack(b"X", (code & 0xFF) << 8))


def _null_stdio() -> None:
    """Point this process's stdin, stdout and stderr at ``/dev/null``."""
    null = os.open(os.devnull, os.O_RDWR)
    for target in _STDIO:
        os.dup2(null, target)
    if null not in _STDIO:
        os.close(null)


def _recv_exactly(sock: _socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("fork server closed the connection")
        data += chunk
    return data


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except OSError:
        pass


# --- the first launch and its server ----------------------------------------------


def start(
    name: str,
    *,
    prepare: Callable[[], object] | None = None,
    warm: Callable[[], object] | None = None,
    preload: Callable[[], object] | None = None,
) -> None:
    """Start the fork server ``name`` from this (imported) process, then return.

    Call it once everything a launch needs is imported and before serving: nothing
    may have started threads, an event loop, or opened grpc channels or servers. It
    returns in this process (which goes on serving its own launch) and, later, in
    every child the server forks for another launch, each with that launch's stdio,
    environment, ``sys.argv`` and working directory in place. Does nothing when the
    server is off (:func:`enabled`), when one already listens under ``name``, when
    the host is already gone, or when this process runs other threads (a fork would
    copy only this one, and any lock another holds would stay held in every child).

    The server keeps one child forked ahead, on standby, and hands it the next
    launch: it forks the first as it starts and the next one as soon as a launch has
    been handed over (so the standby gets ready while that launch serves and the host
    starts its next launch's process). The standby runs ``warm``, then ``prepare``, then
    waits for its launch. Should no standby be there (its fork failed, it died), a
    launch gets a child forked for it, which runs ``prepare`` only.

    * ``warm``: exercise what serving a launch will run, without serving anyone (a
      dry run), with the server's environment (this first launch's), putting what it
      must on disk in :func:`warm_dir`. A forked child's first write to each page it
      shares with the server costs it a page copy (~1,700 of them for a Terraform
      provider's start on this project's machine, ~15 ms); a warmed standby has made
      those copies before its launch comes. Nothing it does
      may outlast it or show: the launch's own environment replaces the server's before
      the child returns from here, and the host may be watching its directories.
    * ``prepare``: per-launch material made ahead, such as the launch's certificates
      (:func:`plugwire.grpc.mtls.prepare_certs`). Each child runs it in itself, so no
      two children ever hold the same.
    * ``preload``: run once in the server, before it forks its first child: imports
      that ``warm`` or ``prepare`` would otherwise make in every child (a launch that
      had its certificates made elsewhere never loaded their crypto library).

    The exceptions of all three are ignored (a launch then does the work itself).
    """
    if not enabled():
        return
    import contextlib

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return  # a fork copies only this thread: locks others hold would stay held
    import socket

    host_pid = os.getppid()
    if host_pid <= 1:
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(_address(name))
        listener.listen(16)
        host = os.pidfd_open(host_pid)
    except OSError:
        listener.close()
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    pid = os.fork()
    if pid:
        os.close(host)
        listener.close()
        return
    try:
        _Server(listener, host, prepare, warm, preload).run()  # returns only in a child
    except BaseException as exc:  # the server never runs the launch's code
        if _forked:  # a child that could not take on its launch: say so on its stderr
            with contextlib.suppress(OSError):
                os.write(2, f"plugwire fork server: cannot serve this launch: {exc!r}\n".encode())
        os._exit(1)


def _send_launch(sock: _socket.socket, fds: Sequence[int], payload: bytes) -> None:
    """One launch hand-off: header, the descriptors (the launch's stdio; to a standby,
    also the launch's connection), the marshalled payload."""
    sock.sendmsg(
        [_HEADER.pack(b"L", len(payload))],
        [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))],
    )
    sock.sendall(payload)


def _receive_launch(
    sock: socket.socket, count: int = len(_STDIO)
) -> tuple[list[int], bytes, dict[str, object]]:
    """Read one hand-off of ``count`` descriptors (see :func:`_send_launch`): the
    descriptors, the payload and what it holds. Raises OSError, ValueError, EOFError,
    TypeError or struct.error for anything else (the descriptors that came are
    closed)."""
    import socket

    fds: list[int] = []
    try:
        msg, ancdata, _flags, _addr = sock.recvmsg(
            _HEADER.size, socket.CMSG_SPACE(count * _FD.size)
        )
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4])
        tag, size = _HEADER.unpack(msg)
        if tag != b"L" or len(fds) != count:
            raise ValueError("not a launch")
        payload = _recv_exactly(sock, size)
        launch = marshal.loads(payload)
        if not isinstance(launch, dict):
            raise ValueError("not a launch")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds, payload, launch


class _Child:
    def __init__(self, pid: int, pidfd: int, conn: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn = conn


class _Standby:
    """A child forked ahead, warming up or waiting for a launch on ``sock``."""

    def __init__(self, pid: int, pidfd: int, sock: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.sock = sock


class _Server:
    """The fork server process: accept launches, hand them to children, report their
    ends; keep one child on standby."""

    def __init__(
        self,
        listener: socket.socket,
        host: int,
        prepare: Callable[[], object] | None,
        warm: Callable[[], object] | None,
        preload: Callable[[], object] | None,
    ) -> None:
        self.listener = listener
        self.host = host
        self.prepare = prepare
        self.warm = warm
        self.preload = preload
        self.selector: selectors.BaseSelector | None = None  # made after _detach
        self.children: dict[int, _Child] = {}  # by pidfd
        self.by_conn: dict[int, _Child] = {}  # by connection fd
        self.standby: _Standby | None = None
        self.scratch: str | None = None  # warm_dir(), made after _detach
        self.pid = 0
        self.libc: Any = None

    def run(self) -> None:
        import selectors
        import time

        self._detach()
        self.selector = selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ, "accept")
        selector.register(self.host, selectors.EVENT_READ, "host")
        if self.warm is not None:
            self.scratch = _make_scratch()
        self._run(self.preload)
        if self._fork_standby():
            return
        idle_since = time.monotonic()
        while True:
            timeout = None
            if not self.children:
                timeout = max(0.0, idle_since + IDLE_SECONDS - time.monotonic())
            events = selector.select(timeout)
            if not events and not self.children:
                self._exit()  # idle
            for ready, _ in events:
                what = ready.data
                if what == "host":
                    self._exit()  # the children die with us (PR_SET_PDEATHSIG)
                if what == "accept":
                    if self._accept():
                        return  # in the forked child: serve the launch
                elif what == "child" and ready.fd in self.children and _ended(ready.fd):
                    if self._reap(self.children[ready.fd]):
                        return  # in a new standby: serve its launch
                elif (
                    what == "standby"
                    and self.standby is not None
                    and ready.fd == self.standby.pidfd
                    and _ended(ready.fd)
                ):
                    self._drop_standby()  # it died before its launch: the next hand-off forks one
                elif (
                    what == "conn"
                    and ready.fd in self.by_conn
                    and self._launch_gone(self.by_conn[ready.fd])
                ):
                    return  # in a new standby: serve its launch
            if not self.children:
                idle_since = time.monotonic()

    def _exit(self) -> NoReturn:
        """End the server (its host has gone, it is idle, or it got SIGTERM): its
        standby first (it may be warming up in the scratch directory), then the scratch
        directory."""
        if self.standby is not None:
            self._drop_standby()
        if self.scratch is not None:
            import shutil

            shutil.rmtree(self.scratch, ignore_errors=True)
        os._exit(0)

    def _detach(self) -> None:
        """Leave the first launch's session and stdio; keep only the listener."""
        import signal

        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: self._exit())
        _null_stdio()
        keep = sorted({self.listener.fileno(), self.host})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, _max_fd())
        self.pid = os.getpid()
        self.libc = _libc()

    def _accept(self) -> bool:
        """Take one launch; True in the forked child that serves it."""
        import selectors

        try:
            conn, _ = self.listener.accept()
        except OSError:
            return False
        try:
            if not _same_user(conn):
                raise ValueError("another user")
            conn.settimeout(_RECEIVE_TIMEOUT)
            fds, payload, launch = _receive_launch(conn)
        except (OSError, ValueError, EOFError, TypeError, struct.error):
            conn.close()
            return False
        pid, pidfd = self._hand_to_standby(fds, payload, conn)
        if not pid:
            try:
                pid = os.fork()
            except OSError:
                pid = -1
            if pid == 0:
                self._leave_server()
                self._run(self.prepare)
                self._become_child(fds, launch, conn.detach())
                return True
        for fd in fds:  # the child has its own copies
            os.close(fd)
        if pid < 0:
            conn.close()
            return False
        try:
            if pidfd < 0:
                pidfd = os.pidfd_open(pid)
            conn.sendall(_REPLY.pack(b"P", pid))
        except OSError:
            _kill(pid)
            if pidfd >= 0:
                os.close(pidfd)
            conn.close()
            return False
        conn.settimeout(None)
        child = _Child(pid, pidfd, conn)
        self.children[pidfd] = child
        self.by_conn[conn.fileno()] = child
        assert self.selector is not None
        self.selector.register(pidfd, selectors.EVENT_READ, "child")
        self.selector.register(conn, selectors.EVENT_READ, "conn")
        return self._fork_standby()  # the next launch's, while this one serves

    def _hand_to_standby(
        self, fds: list[int], payload: bytes, conn: socket.socket
    ) -> tuple[int, int]:
        """Pass a launch on to the standby, with the launch's connection (see
        :func:`_report_exit`): its ``(pid, pidfd)``, or ``(0, -1)`` when there is none
        or it cannot take it (the launch then gets a child of its own)."""
        standby = self.standby
        if standby is None:
            return 0, -1
        assert self.selector is not None
        self.selector.unregister(standby.pidfd)
        self.standby = None
        try:
            standby.sock.settimeout(_RECEIVE_TIMEOUT)
            _send_launch(standby.sock, [*fds, conn.fileno()], payload)
        except OSError:
            self._end_standby(standby)
            return 0, -1
        standby.sock.close()
        return standby.pid, standby.pidfd

    def _fork_standby(self) -> bool:
        """Fork the child that takes the next launch; True in that child, once its
        launch has come (it warms up and prepares first)."""
        import selectors
        import socket

        if self.standby is not None:
            return False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return False
        if pid == 0:
            global _warm_dir
            ours.close()
            self._leave_server()
            _warm_dir = self.scratch
            self._run(self.warm)
            _warm_dir = None
            self._run(self.prepare)
            try:
                fds, _payload, launch = _receive_launch(theirs, len(_STDIO) + 1)
            except (OSError, ValueError, EOFError, TypeError, struct.error):
                os._exit(0)  # the server is gone, or its hand-off broke: nothing to serve
            theirs.close()
            *stdio, report = fds
            self._become_child(stdio, launch, report)
            return True
        theirs.close()
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            ours.close()
            _kill(pid)
            return False
        self.standby = _Standby(pid, pidfd, ours)
        assert self.selector is not None
        self.selector.register(pidfd, selectors.EVENT_READ, "standby")
        return False

    def _drop_standby(self) -> None:
        standby = self.standby
        assert standby is not None and self.selector is not None
        self.selector.unregister(standby.pidfd)
        self.standby = None
        self._end_standby(standby)

    @staticmethod
    def _end_standby(standby: _Standby) -> None:
        standby.sock.close()
        _kill(standby.pid)
        os.close(standby.pidfd)

    def _leave_server(self) -> None:
        """In a forked child: drop the server's state; die with the server."""
        import signal

        global _forked
        _forked = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's is for the server
        _die_with_parent(self.libc, self.pid)
        assert self.selector is not None
        self.selector.close()
        self.listener.close()
        os.close(self.host)
        for other in self.children.values():
            os.close(other.pidfd)
            other.conn.close()
        if self.standby is not None:
            os.close(self.standby.pidfd)
            self.standby.sock.close()

    @staticmethod
    def _run(step: Callable[[], object] | None) -> None:
        if step is not None:
            try:
                step()
            except Exception:  # the launch does the work itself
                pass

    def _become_child(self, fds: list[int], launch: dict[str, object], report: int) -> None:
        """In the forked child: take on the launch's stdio, session, environment,
        arguments and directory; ``report`` is the server's end of the launch's
        connection (see :func:`_report_exit`)."""
        import signal

        from . import _fastexit

        global _report_fd
        os.set_inheritable(report, False)  # not for the processes the plugin starts
        _report_fd = report
        _fastexit.before_exit = _report_exit

        for target, fd in zip(_STDIO, fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.setsid()  # its own group: the launch forwards the host's signals
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        env = launch["env"]
        argv = launch["argv"]
        cwd = launch["cwd"]
        if not (isinstance(env, dict) and isinstance(argv, list) and isinstance(cwd, str)):
            raise ValueError("not a launch")
        os.environ.clear()
        os.environ.update(env)
        sys.argv[:] = argv
        os.chdir(cwd)

    def _reap(self, child: _Child) -> bool:
        """A child ended: report its status to its launch; fork the next standby (True
        in that standby, once its launch has come)."""
        _, status = os.waitpid(child.pid, 0)
        self._forget(child)
        try:
            child.conn.sendall(_REPLY.pack(b"X", status))
        except OSError:
            pass
        child.conn.close()
        return self._fork_standby()  # while the host starts the next launch's process

    def _launch_gone(self, child: _Child) -> bool:
        """The launch process closed its end (killed, or its host died): so must the
        child. Then as :meth:`_reap`."""
        try:
            if child.conn.recv(1):
                return False  # a launch sends nothing after the hand-off; ignore
        except OSError:
            pass
        _kill(child.pid)
        self._forget(child)
        child.conn.close()
        return self._fork_standby()

    def _forget(self, child: _Child) -> None:
        assert self.selector is not None
        self.selector.unregister(child.pidfd)
        self.selector.unregister(child.conn)
        del self.children[child.pidfd]
        del self.by_conn[child.conn.fileno()]
        os.close(child.pidfd)


def _kill(pid: int) -> None:
    """SIGKILL this server's child ``pid`` (if it still runs) and reap it."""
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)


def _ended(pidfd: int) -> bool:
    """Whether the process behind ``pidfd`` has ended, now. An event of one
    :meth:`selectors.BaseSelector.select` may be stale by the time it is handled: a
    descriptor closed while handling an earlier one can come back, with the same
    number, for another process in the same round."""
    poll = select.poll()
    poll.register(pidfd, select.POLLIN)
    return bool(poll.poll(0))


def _make_scratch() -> str | None:
    """The server's :func:`warm_dir`: a fresh private directory under
    :data:`WARM_SCRATCH`, or None where none can be made."""
    import tempfile

    try:
        return tempfile.mkdtemp(prefix=f"plugwire-forkserver-{os.getpid()}-", dir=WARM_SCRATCH)
    except OSError:
        return None


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _libc() -> Any:
    """The C library (for ``prctl``), loaded once in the server; None without one."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None


def _die_with_parent(libc: Any, parent: int) -> None:
    """``PR_SET_PDEATHSIG(SIGKILL)``: the child dies when the server does."""
    import signal

    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(1)
