"""The host side: serve the CIPD plugin protocol and launch admission plugins.

:class:`CipdHost` plays the part of LUCI's ``cipd/client/cipd/plugin/host.Host``: it
serves the plugin protocol (``cipd.plugin.Host`` and ``cipd.plugin.Admissions``) on
``127.0.0.1:<random port>`` and authenticates every call by the ``x-plugin-ticket``
metadata its plugins got in their stdin handshake. It composes a core
:class:`~plugwire.core.host.Host`: the gRPC server runs in that host's task group,
:meth:`CipdHost.launch` launches :class:`~plugwire.grpc.cipd.admission.AdmissionPlugin`
handles through it and closing goes through it (every plugin in parallel within
``close_timeout``, then the server).

What a plugin may call back is its :class:`~plugwire.core.controller.Controller`:
``Host.Log`` needs the ``"log"`` capability, ``Host.ListMetadata`` ``"metadata"``.
A call without it is PermissionDenied with the message of the
:class:`~plugwire.core.controller.CapabilityDeniedError` (naming plugin and
capability); the host logs it and keeps serving.

grpc.aio is asyncio-only: this module refuses trio with
:class:`~plugwire.core.errors.TransportNotAvailableError`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import anyio
import anyio.abc

import grpc
import grpc.aio
from plugwire.core.controller import CapabilityDeniedError
from plugwire.core.errors import ClosedError, RemoteError
from plugwire.core.host import Host
from plugwire.core.shutdown import ShutdownPolicy

from . import _wire
from ._generated import cipd_admission_pb2, cipd_plugin_pb2
from .admission import CAPABILITIES, DEFAULT_SHUTDOWN, AdmissionPlugin
from .handshake import TICKET_METADATA_KEY
from .metadata import MetadataQuery, MetadataSource
from .session import Session

__all__ = ["CipdHost"]

log = logging.getLogger("plugwire.grpc.cipd")

_SEVERITY = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class CipdHost:
    """Serves CIPD plugins; ``async with CipdHost(service_url=...) as host: ...``.

    Arguments:
        service_url: the CIPD backend the client uses; sent in every admission and the
            only one plugins may query metadata of (others: PermissionDenied).
        metadata: answers ``Host.ListMetadata``; without one it is Unimplemented.
        name: names the host in logs and errors.
        shutdown: how each plugin is stopped (default :data:`DEFAULT_SHUTDOWN`: close
            stdin, 5 s of grace, SIGTERM, 1 s, SIGKILL).
        close_timeout: the deadline for closing every plugin in parallel; what is
            still running then is killed.
        host: a core :class:`~plugwire.core.Host` to share with other families (it
            runs the server and launches the plugins; the caller enters and closes
            it, and leaving this CIPD host closes only its own plugins). By default the
            CIPD host has one of its own.

    Leaving the context closes every plugin in parallel, then the server.
    """

    def __init__(
        self,
        *,
        service_url: str = "",
        metadata: MetadataSource | None = None,
        name: str = "cipd-host",
        shutdown: ShutdownPolicy = DEFAULT_SHUTDOWN,
        close_timeout: float = 10.0,
        host: Host | None = None,
    ) -> None:
        self.service_url = service_url
        self.metadata = metadata
        self.name = name
        self._own_host = host is None
        self._shutdown = shutdown
        self.host = host if host is not None else Host(name, close_timeout=close_timeout)
        self._sessions: dict[str, Session] = {}
        self._server: grpc.aio.Server | None = None
        self._server_scope: anyio.CancelScope | None = None
        self._server_stopped = anyio.Event()
        self._port = 0
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> CipdHost:
        _wire.require_asyncio("plugwire.grpc.cipd.CipdHost")
        if self._own_host:
            await self.host.__aenter__()
        try:
            await self.host.task_group.start(self._serve)
        except BaseException:
            if self._own_host:
                await self.host.__aexit__(*sys.exc_info())
            raise
        log.debug("%s serving the CIPD plugin protocol on 127.0.0.1:%d", self.name, self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            if self._own_host:
                await self.host.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close every plugin (in parallel, through the core host), then stop the
        server. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._own_host:
            await self.host.aclose()
        else:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.host.close_timeout):
                async with anyio.create_task_group() as tg:
                    for plugin in self.plugins.values():
                        tg.start_soon(self.host.close, plugin)
        if self._server_scope is not None:
            self._server_scope.cancel()
            await self._server_stopped.wait()

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Run the gRPC server until the host closes."""
        try:
            with anyio.CancelScope() as scope:
                server = grpc.aio.server()
                server.add_generic_rpc_handlers(self._handlers())
                self._port = server.add_insecure_port("127.0.0.1:0")
                await server.start()
                self._server = server
                self._server_scope = scope
                task_status.started()
                await anyio.sleep_forever()
        finally:
            running, self._server = self._server, None
            if running is not None:
                with anyio.CancelScope(shield=True):
                    await running.stop(grace=None)
            self._server_stopped.set()

    @property
    def port(self) -> int:
        """The 127.0.0.1 TCP port plugins connect to."""
        if self._server is None:
            raise ClosedError("the CIPD host is not running", peer=self.name, step="port")
        return self._port

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The core host's task group (raises :class:`ClosedError` once closed)."""
        return self.host.task_group

    @property
    def plugins(self) -> Mapping[str, AdmissionPlugin]:
        """The admission plugins launched and not closed, by name."""
        return {
            name: plugin
            for name, plugin in self.host.plugins.items()
            if isinstance(plugin, AdmissionPlugin)
        }

    async def launch(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        connect_timeout: float = 30.0,
        max_restarts: int = 0,
        capabilities: Iterable[str] = CAPABILITIES,
        shutdown: ShutdownPolicy | None = None,
    ) -> AdmissionPlugin:
        """Launch the admission plugin ``argv`` through the core host; its process
        starts on the first check.

        Arguments are those of :class:`~plugwire.grpc.cipd.admission.AdmissionPlugin`.
        Without a ``name`` the executable's base name is used, with ``-2``, ``-3``...
        appended when another plugin has it; an explicit name already in use is a
        :class:`~plugwire.core.errors.ConfigError`. ``shutdown`` defaults to the
        host's policy (which closing the host applies to every plugin).
        """
        if self._closed or not self.host.running:
            raise ClosedError("the CIPD host is not running", peer=self.name, step="launch")
        if name is None and argv:
            name = self._free_name(os.path.basename(os.fspath(argv[0])))
        plugin = AdmissionPlugin(
            self,
            argv,
            name=name,
            env=env,
            inherit_env=inherit_env,
            connect_timeout=connect_timeout,
            max_restarts=max_restarts,
            capabilities=capabilities,
            shutdown=shutdown if shutdown is not None else self._shutdown,
        )
        return await self.host.launch(plugin)

    def _free_name(self, base: str) -> str:
        name, n = base, 1
        while name in self.host:
            n += 1
            name = f"{base}-{n}"
        return name

    # -- sessions (one per plugin process, keyed by its ticket) ---------------------

    def _add_session(self, session: Session) -> None:
        self._sessions[session.ticket] = session

    def _drop_session(self, ticket: str) -> None:
        self._sessions.pop(ticket, None)

    def _forget(self, plugin: AdmissionPlugin) -> None:
        """A plugin closed by itself: stop tracking it."""
        self.host.forget(plugin)

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

    async def _session(self, context: grpc.aio.ServicerContext[Any, Any]) -> Session:
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

    async def _capability(
        self, session: Session, name: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> object:
        """The capability ``name`` of the calling plugin's controller; abort
        PermissionDenied (with the typed error's message) when it is not granted."""
        try:
            return session.plugin.controller.require(name)
        except CapabilityDeniedError as exc:
            log.warning("%s: refused a call: %s", self.name, exc)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.message)
            raise

    async def _log(
        self, request: cipd_plugin_pb2.LogRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        session = await self._session(context)
        logger = await self._capability(session, "log", context)
        level = _SEVERITY.get(request.severity.lower(), logging.INFO)
        cast(logging.Logger, logger).log(
            level,
            "%s",
            request.message,
            extra={"plugin": session.plugin.name, "severity": request.severity},
        )

    async def _list_metadata(
        self,
        request: cipd_plugin_pb2.ListMetadataRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> cipd_plugin_pb2.ListMetadataResponse:
        session = await self._session(context)
        source = cast(MetadataSource | None, await self._capability(session, "metadata", context))
        if source is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "a metadata source is not configured on the host"
            )
        if request.service_url != self.service_url:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"can query only the CIPD repository the client is using ({self.service_url!r})",
            )
        assert source is not None
        query = MetadataQuery(
            service_url=request.service_url,
            package=request.package,
            instance=_wire.ref_from_pb(request.instance),
            keys=tuple(request.keys),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        try:
            page = await source.list_metadata(query)
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
