"""The host side: launch CIPD admission plugins and ask them about pins.

:class:`CipdHost` plays the part of LUCI's ``cipd/client/cipd/plugin/host.Host``: it
serves the plugin protocol (``cipd.plugin.Host`` and ``cipd.plugin.Admissions``) on
``127.0.0.1:<random port>`` and authenticates every call by the ``x-plugin-ticket``
metadata its plugins got in their stdin handshake. :class:`AdmissionPlugin` plays
``host.AdmissionPlugin``: ``check_admission(pin)`` returns a
:class:`~plugwire.core.promise.Promise`, one per distinct pin, and the plugin process
starts on the first check.

Semantics follow the Go host: the plugin must call ``ListAdmissions`` within
``connect_timeout`` (30 s); a second call or a protocol version other than 1 is
FailedPrecondition; when the stream ends every pending and future check fails with
:class:`~plugwire.grpc.cipd.errors.AdmissionAbortedError` (carrying the process exit
when the plugin died); FailedPrecondition from the plugin is "not admitted"
(:class:`~plugwire.grpc.cipd.errors.AdmissionDeniedError`). Closing closes the
plugin's stdin and SIGKILLs it after 5 s. Unlike upstream, ``max_restarts`` can
relaunch a plugin that died and re-send the checks it left undecided.

grpc.aio is asyncio-only: this module refuses trio with
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import grpc
import grpc.aio
from plugwire.core.errors import (
    ClosedError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    PlugwireError,
    RemoteError,
    VersionMismatchError,
)
from plugwire.core.process import PluginProcess
from plugwire.core.promise import Promise, PromiseCache

from . import _wire
from ._generated import cipd_admission_pb2, cipd_plugin_pb2
from .errors import AdmissionAbortedError, AdmissionDeniedError
from .handshake import TICKET_METADATA_KEY, PluginHandshake, new_ticket
from .metadata import MetadataQuery, MetadataSource
from .pins import Pin

__all__ = ["AdmissionPlugin", "CipdHost"]

log = logging.getLogger("plugwire.grpc.cipd")

_SEVERITY = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: How long to wait for the exit status after the stream ends, to tell a crash from
#: a hang-up (luci's host waits 50 ms and often misses it on a loaded machine).
_EXIT_POLL = 1.0
#: How long to wait for the exit status of a plugin that closed its stdin early.
_HANDSHAKE_EXIT_WAIT = 2.0


class _Session:
    """One launched plugin process and the ticket it authenticates with."""

    def __init__(self, plugin: AdmissionPlugin, ticket: str) -> None:
        self.plugin = plugin
        self.ticket = ticket
        self.process: PluginProcess | None = None
        self.connected = anyio.Event()
        self.connects = 0
        self.disconnected = False
        self.inflight: set[str] = set()


class CipdHost:
    """Serves CIPD plugins; ``async with CipdHost(service_url=...) as host: ...``.

    Arguments:
        service_url: the CIPD backend the client uses; sent in every admission and the
            only one plugins may query metadata of (others: PermissionDenied).
        metadata: answers ``Host.ListMetadata``; without one it is Unimplemented.
        name: names the host in logs and errors.

    Leaving the context closes every plugin in parallel, then the server.
    """

    def __init__(
        self,
        *,
        service_url: str = "",
        metadata: MetadataSource | None = None,
        name: str = "cipd-host",
    ) -> None:
        self.service_url = service_url
        self.metadata = metadata
        self.name = name
        self._sessions: dict[str, _Session] = {}
        self._plugins: list[AdmissionPlugin] = []
        self._server: grpc.aio.Server | None = None
        self._port = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> CipdHost:
        _wire.require_asyncio("plugwire.grpc.cipd.CipdHost")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            server = grpc.aio.server()
            server.add_generic_rpc_handlers(self._handlers())
            self._port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            self._server = server
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        log.debug("%s serving the CIPD plugin protocol on 127.0.0.1:%d", self.name, self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        with anyio.CancelScope(shield=True):
            await self.aclose()
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        return await tg.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close every plugin (in parallel), then stop the server. Idempotent."""
        if self._closed:
            return
        self._closed = True
        async with anyio.create_task_group() as tg:
            for plugin in self._plugins:
                tg.start_soon(plugin.aclose)
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    @property
    def port(self) -> int:
        """The 127.0.0.1 TCP port plugins connect to."""
        if self._server is None:
            raise ClosedError("the CIPD host is not running", peer=self.name, step="port")
        return self._port

    def _spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``func(*args)`` in the host's task group (dropped once the host closed)."""
        if self._tg is not None:
            self._tg.start_soon(func, *args)

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None or self._closed:
            raise ClosedError("the CIPD host is not running", peer=self.name, step="task group")
        return self._tg

    def admission_plugin(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        connect_timeout: float = 30.0,
        close_timeout: float = 5.0,
        max_restarts: int = 0,
    ) -> AdmissionPlugin:
        """A handle to the admission plugin ``argv``; it starts on the first check.

        Arguments:
            name: names the plugin in logs (``plugwire.plugin.<name>``) and errors;
                defaults to the executable's base name.
            env: extra environment (the host's own is inherited unless
                ``inherit_env=False``, as the Go host does).
            connect_timeout: how long the plugin may take to call ``ListAdmissions``.
            close_timeout: grace between closing stdin and SIGKILL.
            max_restarts: relaunch a plugin that dies this many times, re-sending its
                undecided checks (0, the default, is upstream's behaviour).
        """
        if self._closed or self._tg is None:
            raise ClosedError(
                "the CIPD host is not running", peer=self.name, step="admission_plugin"
            )
        if not argv:
            raise PluginStartError("empty plugin command", peer=name, step="admission_plugin")
        plugin = AdmissionPlugin(
            self,
            [os.fspath(a) for a in argv],
            name=name or os.path.basename(os.fspath(argv[0])),
            env=dict(env or {}),
            inherit_env=inherit_env,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            max_restarts=max_restarts,
        )
        self._plugins.append(plugin)
        return plugin

    # -- the gRPC services -------------------------------------------------------

    def _handlers(self) -> Sequence[grpc.GenericRpcHandler[Any, Any]]:
        empty = _wire.EMPTY.SerializeToString()
        host = grpc.method_handlers_generic_handler(
            _wire.HOST_SERVICE,
            {
                "Log": grpc.unary_unary_rpc_method_handler(
                    self._log,
                    request_deserializer=cipd_plugin_pb2.LogRequest.FromString,
                    response_serializer=lambda _: empty,
                ),
                "ListMetadata": grpc.unary_unary_rpc_method_handler(
                    self._list_metadata,
                    request_deserializer=cipd_plugin_pb2.ListMetadataRequest.FromString,
                    response_serializer=cipd_plugin_pb2.ListMetadataResponse.SerializeToString,
                ),
            },
        )
        admissions = grpc.method_handlers_generic_handler(
            _wire.ADMISSIONS_SERVICE,
            {
                "ListAdmissions": grpc.unary_stream_rpc_method_handler(
                    self._list_admissions,
                    request_deserializer=cipd_admission_pb2.ListAdmissionsRequest.FromString,
                    response_serializer=cipd_admission_pb2.Admission.SerializeToString,
                ),
                "ResolveAdmission": grpc.unary_unary_rpc_method_handler(
                    self._resolve_admission,
                    request_deserializer=cipd_admission_pb2.ResolveAdmissionRequest.FromString,
                    response_serializer=lambda _: empty,
                ),
            },
        )
        return (host, admissions)

    async def _session(self, context: grpc.aio.ServicerContext[Any, Any]) -> _Session:
        """The session whose ticket the call carries; abort Unauthenticated/PermissionDenied."""
        ticket = None
        for key, value in context.invocation_metadata() or ():
            if key == TICKET_METADATA_KEY:
                ticket = value
                break
        if ticket is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no ticket in the request")
        session = self._sessions.get(str(ticket))
        if session is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "invalid ticket in the request")
        assert session is not None
        return session

    async def _log(
        self, request: cipd_plugin_pb2.LogRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        session = await self._session(context)
        plugin = session.plugin
        level = _SEVERITY.get(request.severity.lower(), logging.INFO)
        plugin.logger.log(
            level,
            "%s",
            request.message,
            extra={"plugin": plugin.name, "severity": request.severity},
        )

    async def _list_metadata(
        self,
        request: cipd_plugin_pb2.ListMetadataRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> cipd_plugin_pb2.ListMetadataResponse:
        await self._session(context)
        if self.metadata is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "a metadata source is not configured on the host"
            )
        if request.service_url != self.service_url:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"can query only the CIPD repository the client is using ({self.service_url!r})",
            )
        assert self.metadata is not None
        query = MetadataQuery(
            service_url=request.service_url,
            package=request.package,
            instance=_wire.ref_from_pb(request.instance),
            keys=tuple(request.keys),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        try:
            page = await self.metadata.list_metadata(query)
        except RemoteError as exc:
            await context.abort(_grpc_code(exc.code), exc.message)
            raise
        except Exception as exc:
            log.exception("metadata source failed for %s", request.package)
            await context.abort(grpc.StatusCode.INTERNAL, f"metadata source failed: {exc}")
            raise
        return cipd_plugin_pb2.ListMetadataResponse(
            metadata=[e.to_pb() for e in page.entries], next_page_token=page.next_page_token
        )

    async def _list_admissions(
        self,
        request: cipd_admission_pb2.ListAdmissionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        session = await self._session(context)
        await session.plugin._serve_admissions(session, request, context)

    async def _resolve_admission(
        self,
        request: cipd_admission_pb2.ResolveAdmissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        session = await self._session(context)
        session.plugin._resolve(session, request)


_GRPC_CODES = {int(code.value[0]): code for code in grpc.StatusCode}


def _grpc_code(code: int) -> grpc.StatusCode:
    return _GRPC_CODES.get(code, grpc.StatusCode.UNKNOWN)


class AdmissionPlugin:
    """One admission plugin: checks go in as pins, decisions come out as promises.

    Made by :meth:`CipdHost.admission_plugin`. The process starts on the first
    :meth:`check_admission`; checks queue until it connects.
    """

    def __init__(
        self,
        host: CipdHost,
        argv: list[str],
        *,
        name: str,
        env: dict[str, str],
        inherit_env: bool,
        connect_timeout: float,
        close_timeout: float,
        max_restarts: int,
    ) -> None:
        self.host = host
        self.argv = argv
        self.name = name
        self.logger = logging.getLogger(f"plugwire.plugin.{name}")
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.max_restarts = max_restarts
        #: Mixed into admission IDs so plugins cannot key persistent caches on them.
        self.salt = os.getpid()
        self.restarts = 0
        #: The version string the plugin gave in ListAdmissions, once connected.
        self.plugin_version: str | None = None
        self._env = env
        self._inherit_env = inherit_env
        self._cache: PromiseCache[str, None] = PromiseCache()
        self._requests: dict[str, cipd_admission_pb2.Admission] = {}
        send, recv = anyio.create_memory_object_stream[str](math.inf)
        self._send: MemoryObjectSendStream[str] = send
        self._recv: MemoryObjectReceiveStream[str] = recv
        self._error: PlugwireError | None = None
        self._launching = False
        self._session: _Session | None = None
        self._closing = anyio.Event()
        self._closed = False
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
        or settled, until :meth:`clear_cache`.
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
        self._requests[request.admission_id] = request
        self._send.send_nowait(request.admission_id)
        if not self._launching:
            self._launching = True
            self._idle = anyio.Event()
            self.host.task_group.start_soon(self._launch)
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
        """The running plugin process, if any."""
        return None if self._session is None else self._session.process

    @property
    def error(self) -> PlugwireError | None:
        """Why the plugin stopped taking checks (``None`` while it takes them)."""
        return self._error

    async def aclose(self) -> None:
        """Abort every pending check, close the plugin's stdin, SIGKILL it after 5 s."""
        if not self._closed:
            self._closed = True
            self._fail(AdmissionAbortedError(peer=self.name, step="close"))
            self._closing.set()
        session, self._session = self._session, None
        if session is not None:
            await self._stop(session)
        await self._idle.wait()

    close = aclose

    # -- internals -----------------------------------------------------------------

    def _make_admission(self, pin: Pin) -> cipd_admission_pb2.Admission:
        request = _wire.admission_pb("", self.host.service_url, pin.package, pin.instance)
        digest = hashlib.sha256(f"{self.salt}\n".encode() + request.SerializeToString())
        request.admission_id = base64.b64encode(digest.digest()).rstrip(b"=").decode()
        return request

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

    async def _start_session(self) -> _Session | None:
        """Launch a process, send the handshake and wait for ListAdmissions."""
        if self._error is not None:
            return None
        session = _Session(self, new_ticket())
        process = PluginProcess(
            self.argv,
            env=self._env,
            name=self.name,
            stdin=True,
            inherit_env=self._inherit_env,
            polite_signal=None,
            logger=self.logger,
            on_stdout=lambda line: self.logger.info("%s", line, extra={"stream": "stdout"}),
        )
        self.host._sessions[session.ticket] = session
        try:
            await process.start(self.host.task_group)
        except PlugwireError as exc:
            self.host._sessions.pop(session.ticket, None)
            self.logger.warning("the admission plugin failed to start: %s", exc)
            self._fail(exc)
            return None
        session.process = process
        self._session = session
        error: PlugwireError | None = None
        try:
            await process.write_stdin(PluginHandshake(self.host.port, session.ticket).encode())
        except PlugwireError as exc:
            # Its stdin is gone: it is exiting. Report how, as a failed start.
            with anyio.move_on_after(_HANDSHAKE_EXIT_WAIT):
                await process.done.wait()
            error = self._exited_early(process) if process.done.is_set() else exc
        if error is None:
            error = await self._await_connect(session, process)
        if error is not None:
            self._session = None
            await self._stop(session)
            if self._error is None and self._may_restart_after(error):
                self.restarts += 1
                self.logger.warning(
                    "the admission plugin failed to start (%s); restart %d of %d",
                    error,
                    self.restarts,
                    self.max_restarts,
                )
                return await self._start_session()
            if self._error is None:
                self.logger.warning("the admission plugin failed to start: %s", error)
            self._fail(error)
            return None
        return session

    def _may_restart_after(self, error: PlugwireError) -> bool:
        """Only a plugin that died during start-up is relaunched (not a timeout)."""
        return (
            isinstance(error, PluginStartError)
            and isinstance(error.__cause__, PluginExitedError)
            and self.restarts < self.max_restarts
            and not self._closed
        )

    async def _await_connect(
        self, session: _Session, process: PluginProcess
    ) -> PlugwireError | None:
        with anyio.move_on_after(self.connect_timeout):
            async with anyio.create_task_group() as tg:

                async def first(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                for event in (session.connected, process.done, self._closing):
                    tg.start_soon(first, event)
        if self._error is not None:
            return self._error  # closed, or the protocol version was refused
        if session.connected.is_set():
            return None
        if process.done.is_set():
            return self._exited_early(process)
        return PluginTimeoutError(
            f"the admission plugin did not call ListAdmissions within {self.connect_timeout} s",
            peer=self.name,
            step="connect",
            expected="a ListAdmissions call",
            seen="nothing",
        )

    def _exited_early(self, process: PluginProcess) -> PluginStartError:
        exited = process.exit_error("connect")
        error = PluginStartError(
            "the admission plugin terminated before making ListAdmissions RPC",
            peer=self.name,
            step="connect",
            expected="a ListAdmissions call",
            seen=exited.seen,
        )
        error.__cause__ = exited
        return error

    async def _stop(self, session: _Session) -> None:
        self.host._sessions.pop(session.ticket, None)
        if session.process is not None:
            await session.process.terminate(grace=self.close_timeout)

    async def _serve_admissions(
        self,
        session: _Session,
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
            self.host._spawn(self._disconnected, session)

    def _resolve(
        self, session: _Session, request: cipd_admission_pb2.ResolveAdmissionRequest
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

    async def _disconnected(self, session: _Session) -> None:
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
        if self._session is session and self.restarts < self.max_restarts and not self._closed:
            # Handled in _after_exit once the process is gone: stop it if it lingers.
            if process is not None and not process.done.is_set():
                await self._stop(session)
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
            self.host._spawn(self._stop, session)

    async def _after_exit(self, session: _Session) -> bool:
        """The session's process exited: return True to start another one."""
        self.host._sessions.pop(session.ticket, None)
        if self._error is not None or self._closed or self._session is not session:
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
