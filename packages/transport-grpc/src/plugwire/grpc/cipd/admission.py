"""The admission plugin handle: checks go in as pins, decisions come out as promises.

:class:`AdmissionPlugin` plays LUCI's ``cipd/client/cipd/plugin/host.AdmissionPlugin``
as a core :class:`~plugwire.core.handle.BasePluginHandle` (family ``"cipd"``).
``check_admission(pin)`` returns a :class:`~plugwire.core.promise.Promise`, one per
distinct pin; the plugin process starts on the first check, not when the handle is
launched.

Semantics follow the Go host: the plugin must call ``ListAdmissions`` within
``connect_timeout`` (30 s); a second call or a protocol version other than 1 is
FailedPrecondition; when the stream ends every pending and future check fails with
:class:`~plugwire.grpc.cipd.errors.AdmissionAbortedError` (carrying the process exit
when the plugin died); FailedPrecondition from the plugin is "not admitted"
(:class:`~plugwire.grpc.cipd.errors.AdmissionDeniedError`). Closing aborts every
pending check and runs core's shutdown sequence: the graceful step closes the
plugin's stdin, then (by default) 5 s of grace, SIGTERM, SIGKILL. Unlike upstream,
``max_restarts`` can relaunch a plugin that died and re-send the checks it left
undecided. Each process is a :class:`~plugwire.grpc.cipd.session.Session`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import grpc
import grpc.aio
from plugwire.core.controller import Controller
from plugwire.core.errors import (
    ConfigError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    VersionMismatchError,
)
from plugwire.core.handle import BasePluginHandle
from plugwire.core.process import PluginProcess
from plugwire.core.promise import Promise, PromiseCache
from plugwire.core.shutdown import ShutdownPolicy

from . import _wire
from ._generated import cipd_admission_pb2
from .errors import AdmissionAbortedError, AdmissionDeniedError
from .pins import Pin
from .session import Session

if TYPE_CHECKING:
    from .host import CipdHost

__all__ = ["CAPABILITIES", "DEFAULT_SHUTDOWN", "AdmissionPlugin"]

log = logging.getLogger("plugwire.grpc.cipd")

#: luci's host: close stdin, wait 5 s, kill. Core adds SIGTERM before the SIGKILL.
DEFAULT_SHUTDOWN = ShutdownPolicy(grace=5.0)

#: What an admission plugin may call back on its host: ``Host.Log`` and
#: ``Host.ListMetadata``. Both are granted by default.
CAPABILITIES = ("log", "metadata")

#: How long to wait for the exit status after the stream ends, to tell a crash from
#: a hang-up (luci's host waits 50 ms and often misses it on a loaded machine).
_EXIT_POLL = 1.0


class AdmissionPlugin(BasePluginHandle):
    """One admission plugin of a :class:`~plugwire.grpc.cipd.host.CipdHost`.

    Usually made and launched by :meth:`CipdHost.launch`; any core
    :class:`~plugwire.core.host.Host` can launch one too (``await
    core_host.launch(AdmissionPlugin(cipd_host, argv))``). Launching only binds the
    handle to a task group: the process starts on the first :meth:`check_admission`
    and checks queue until it connects.

    Arguments:
        host: the CIPD host whose server the plugin calls back.
        argv: the plugin's command line.
        name: names the plugin in logs (``plugwire.plugin.<name>``) and errors;
            defaults to the executable's base name.
        env: the plugin's environment. The host's own is not passed (a clean,
            explicit environment: no host secret leaks) unless ``inherit_env=True``,
            which is what the Go host does.
        connect_timeout: how long the plugin may take to call ``ListAdmissions``.
        max_restarts: relaunch a plugin that dies this many times, re-sending its
            undecided checks (0, the default, is upstream's behaviour).
        capabilities: what the plugin may call back, among :data:`CAPABILITIES`
            (``"log"``: ``Host.Log``; ``"metadata"``: ``Host.ListMetadata``).
        controller: a ready-made controller instead (its ``"log"`` capability is a
            :class:`logging.Logger`, ``"metadata"`` a
            :class:`~plugwire.grpc.cipd.metadata.MetadataSource` or ``None``).
        shutdown: the stop policy (default :data:`DEFAULT_SHUTDOWN`, the host's when
            made by :meth:`CipdHost.launch`; a host closing its plugins applies its
            own policy).
    """

    family: ClassVar[str] = "cipd"

    def __init__(
        self,
        host: CipdHost,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        connect_timeout: float = 30.0,
        max_restarts: int = 0,
        capabilities: Iterable[str] = CAPABILITIES,
        controller: Controller | None = None,
        shutdown: ShutdownPolicy | None = None,
    ) -> None:
        if not argv:
            raise PluginStartError("empty plugin command", peer=name, step="launch")
        name = name or os.path.basename(os.fspath(argv[0]))
        logger = logging.getLogger(f"plugwire.plugin.{name}")
        if controller is None:
            controller = _controller(name, capabilities, logger, host)
        super().__init__(
            name,
            controller=controller,
            shutdown=shutdown if shutdown is not None else DEFAULT_SHUTDOWN,
        )
        self.host = host
        self.argv = [os.fspath(a) for a in argv]
        self.logger = logger
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts
        #: Mixed into admission IDs so plugins cannot key persistent caches on them.
        self.salt = os.getpid()
        self.restarts = 0
        #: The version string the plugin gave in ListAdmissions, once connected.
        self.plugin_version: str | None = None
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self._cache: PromiseCache[str, None] = PromiseCache()
        self._requests: dict[str, cipd_admission_pb2.Admission] = {}
        send, recv = anyio.create_memory_object_stream[str](math.inf)
        self._send: MemoryObjectSendStream[str] = send
        self._recv: MemoryObjectReceiveStream[str] = recv
        self._error: PlugwireError | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._launching = False
        self._session: Session | None = None
        self._stop_requested = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()

    # -- public API ----------------------------------------------------------------

    def check_admission(self, pin: Pin) -> Promise[None]:
        """Enqueue a check of ``pin``; the promise resolves to ``None`` when admitted.

        Awaiting the promise raises
        :class:`~plugwire.grpc.cipd.errors.AdmissionDeniedError` when the plugin says
        no, :class:`~plugwire.core.errors.RemoteError` for other plugin errors and
        :class:`~plugwire.grpc.cipd.errors.AdmissionAbortedError` (or the start-up
        error) when the plugin is gone. The same pin returns the same promise, pending
        or settled, until :meth:`clear_cache`. Raises
        :class:`~plugwire.core.errors.ConfigError` on a handle never launched.
        """
        request = self._make_admission(pin)
        promise, created = self._cache.get_or_create(
            request.admission_id, label=lambda _id: str(pin)
        )
        if not created:
            return promise
        if self._error is not None:
            self._cache.pop(request.admission_id)
            failed: Promise[None] = Promise(str(pin))
            failed.reject(self._error)
            return failed
        if not self._launching:
            try:
                tg = self._require_task_group(self._tg)
            except ConfigError:
                self._cache.pop(request.admission_id)
                raise
            self._launching = True
            self._idle = anyio.Event()
            tg.start_soon(self._launch)
        self._requests[request.admission_id] = request
        self._send.send_nowait(request.admission_id)
        return promise

    def prefetch(self, pins: Iterable[Pin]) -> list[Promise[None]]:
        """Enqueue checks of many pins at once; await the returned promises later."""
        return [self.check_admission(pin) for pin in pins]

    async def check(self, pin: Pin, *, timeout: float | None = None) -> None:
        """Check ``pin`` and wait: return when admitted, raise otherwise.

        Raises :class:`~plugwire.core.errors.PluginTimeoutError` when undecided within
        ``timeout`` seconds (the check stays pending and may still resolve).
        """
        promise = self.check_admission(pin)
        with anyio.move_on_after(timeout):
            return await promise.wait()
        raise PluginTimeoutError(
            f"admission check of {pin} undecided after {timeout} s",
            peer=self.name,
            step="check_admission",
        )

    async def is_admitted(self, pin: Pin, *, timeout: float | None = None) -> bool:
        """True if admitted, False if the plugin said no; other failures raise."""
        try:
            await self.check(pin, timeout=timeout)
        except AdmissionDeniedError:
            return False
        return True

    def clear_cache(self) -> int:
        """Drop every settled promise (to free memory); return how many went."""
        return self._cache.clear_resolved()

    @property
    def executable(self) -> str:
        return self.argv[0]

    @property
    def process(self) -> PluginProcess | None:
        """The running plugin process, if any (``None`` before the first check)."""
        return None if self._session is None else self._session.process

    @property
    def error(self) -> PlugwireError | None:
        """Why the plugin stopped taking checks (``None`` while it takes them)."""
        return self._error

    # -- the core handle's lifecycle --------------------------------------------

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        # Lazy, as upstream: the process starts on the first check, in this group.
        self._tg = self._require_task_group(task_group)

    async def _graceful_stop(self) -> None:
        """Abort every pending check, close the plugin's stdin, wait for it to end."""
        self._abort()
        session = self._session
        if session is not None and session.process is not None:
            await session.process.close_stdin()
        await self._idle.wait()

    async def _release(self) -> None:
        self._abort()  # a plugin never started, or one already gone
        session, self._session = self._session, None
        if session is not None:
            self.host._drop_session(session.ticket)
        with anyio.move_on_after(_EXIT_POLL):
            await self._idle.wait()
        if self._process is not None and self._process.running:
            await self._process.kill()  # a process started while closing
        self.host._forget(self)

    def _abort(self) -> None:
        if not self._stop_requested.is_set():
            self._fail(AdmissionAbortedError(peer=self.name, step="close"))
            self._stop_requested.set()

    # -- internals -----------------------------------------------------------------

    def _make_admission(self, pin: Pin) -> cipd_admission_pb2.Admission:
        request = _wire.admission_pb("", self.host.service_url, pin.package, pin.instance)
        digest = hashlib.sha256(f"{self.salt}\n".encode() + request.SerializeToString())
        request.admission_id = base64.b64encode(digest.digest()).rstrip(b"=").decode()
        return request

    def _spawn(self, func: Any, *args: Any) -> None:
        """Run ``func(*args)`` in the plugin's task group (dropped once it is gone)."""
        if self._tg is not None:
            try:
                self._tg.start_soon(func, *args)
            except RuntimeError:  # the task group already exited
                log.debug("%s: dropped %s after close", self.name, func)

    def _fail(self, error: PlugwireError) -> None:
        """Reject every pending and future check with ``error`` (first error wins)."""
        if self._error is not None:
            return
        self._error = error
        self._cache.reject_pending(error)
        self._requests.clear()
        self._send.close()

    async def _launch(self) -> None:
        try:
            while True:
                session = await self._start_session()
                if session is None or session.process is None:
                    return
                # Wait for this session's process to end; a restart loops.
                await session.process.done.wait()
                if not await self._after_exit(session):
                    return
        finally:
            self._idle.set()

    async def _start_session(self) -> Session | None:
        """Launch a process, send the handshake and wait for ListAdmissions."""
        if self._error is not None:
            return None
        assert self._tg is not None
        session = Session(self)
        try:
            process = await session.start(self._tg)
        except PlugwireError as exc:
            self.logger.warning("the admission plugin failed to start: %s", exc)
            self._fail(exc)
            return None
        self._process = process
        self._session = session
        error = await session.connect(process)
        if error is not None:
            self._session = None
            restart = self._error is None and self._may_restart_after(error)
            if not restart:
                # fail the waiting checks now, not after the process's graceful stop
                if self._error is None:
                    self.logger.warning("the admission plugin failed to start: %s", error)
                self._fail(error)
            await session.stop()
            if restart:
                self.restarts += 1
                self.logger.warning(
                    "the admission plugin failed to start (%s); restart %d of %d",
                    error,
                    self.restarts,
                    self.max_restarts,
                )
                return await self._start_session()
            return None
        return session

    def _may_restart_after(self, error: PlugwireError) -> bool:
        """Only a plugin that died during start-up is relaunched (not a timeout)."""
        return (
            isinstance(error, PluginStartError)
            and isinstance(error.__cause__, PluginExitedError)
            and self.restarts < self.max_restarts
            and not self.closing
        )

    async def _serve_admissions(
        self,
        session: Session,
        request: cipd_admission_pb2.ListAdmissionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        session.connects += 1
        if session.connects != 1:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "already called ListAdmissions"
            )
        self.plugin_version = request.plugin_version
        self.logger.debug("using deployment admission plugin %r", request.plugin_version)
        if request.protocol_version != _wire.PROTOCOL_VERSION:
            message = (
                f"unknown protocol version {request.protocol_version}: "
                f"expecting {_wire.PROTOCOL_VERSION}"
            )
            self.logger.error("unknown admission plugin protocol: %s", message)
            self._fail(
                VersionMismatchError(
                    "the admission plugin speaks another protocol version",
                    offered=[request.protocol_version],
                    supported=[_wire.PROTOCOL_VERSION],
                    peer=self.name,
                    step="ListAdmissions",
                )
            )
            session.connected.set()
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
        session.connected.set()
        try:
            while True:
                try:
                    admission_id = await self._recv.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    await context.abort(grpc.StatusCode.ABORTED, "terminating")
                if session.disconnected:  # a stale stream of a replaced process
                    self._requeue([admission_id])
                    return
                promise = self._cache.get(admission_id)
                admission = self._requests.get(admission_id)
                if promise is None or promise.done or admission is None:
                    continue
                session.inflight.add(admission_id)
                await context.write(admission)
        finally:
            self._spawn(self._disconnected, session)

    def _resolve(
        self, session: Session, request: cipd_admission_pb2.ResolveAdmissionRequest
    ) -> None:
        admission_id = request.admission_id
        session.inflight.discard(admission_id)
        self._requests.pop(admission_id, None)
        promise = self._cache.get(admission_id)
        if promise is None or promise.done:
            return
        error = _wire.error_from_status(request.status, peer=self.name, step="ResolveAdmission")
        if error is None:
            promise.resolve(None)
        else:
            promise.reject(error)

    def _requeue(self, ids: Iterable[str]) -> None:
        for admission_id in ids:
            promise = self._cache.get(admission_id)
            if promise is not None and not promise.done and self._error is None:
                self._send.send_nowait(admission_id)

    async def _disconnected(self, session: Session) -> None:
        """The ListAdmissions stream ended: abort everything (or restart)."""
        if session.disconnected:
            return
        session.disconnected = True
        if self._error is not None or self._session is not session:
            return
        process = session.process
        if process is not None:
            with anyio.move_on_after(_EXIT_POLL):
                await process.done.wait()
        if self._error is not None or self._session is not session:
            return  # closed meanwhile, or _after_exit restarted the plugin
        if self.restarts < self.max_restarts and not self.closing:
            # Handled in _after_exit once the process is gone: stop it if it lingers.
            if process is not None and not process.done.is_set():
                await session.stop()
            return
        died = process.error if process is not None and process.done.is_set() else None
        message = "the admission plugin is terminating"
        if died is not None:
            self.logger.warning("the admission plugin has crashed: %s", died)
            message = "the admission plugin terminated"
        self._fail(
            AdmissionAbortedError(
                message, process_error=died, peer=self.name, step="ListAdmissions"
            )
        )
        if self._session is session:
            self._session = None
            self._spawn(session.stop)

    async def _after_exit(self, session: Session) -> bool:
        """The session's process exited: return True to start another one."""
        self.host._drop_session(session.ticket)
        if self._error is not None or self.closing or self._session is not session:
            if self._error is None and self._session is session:
                self._session = None
            return False
        if self.restarts >= self.max_restarts:
            # Exited without the stream ending first (it will end, or it already has).
            died = session.process.error if session.process is not None else None
            msg = "the admission plugin terminated"
            if died is not None:
                self.logger.warning("the admission plugin has crashed: %s", died)
            self._fail(AdmissionAbortedError(msg, process_error=died, peer=self.name, step="run"))
            self._session = None
            return False
        self.restarts += 1
        self._session = None
        session.disconnected = True
        self.logger.warning(
            "the admission plugin exited (%s); restart %d of %d",
            session.process.error if session.process else "?",
            self.restarts,
            self.max_restarts,
        )
        self._requeue(sorted(session.inflight))
        return True


def _controller(
    name: str, capabilities: Iterable[str], logger: logging.Logger, host: CipdHost
) -> Controller:
    """The controller granting ``capabilities`` (names among :data:`CAPABILITIES`)."""
    objects: dict[str, object] = {"log": logger, "metadata": host.metadata}
    granted: dict[str, object] = {}
    for capability in capabilities:
        if capability not in objects:
            raise ConfigError(
                f"unknown CIPD plugin capability {capability!r}",
                peer=name,
                step="launch",
                expected=f"one of {list(CAPABILITIES)}",
                seen=capability,
            )
        granted[capability] = objects[capability]
    return Controller(name, granted)
