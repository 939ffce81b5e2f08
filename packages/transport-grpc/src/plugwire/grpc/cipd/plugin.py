"""The plugin side: write a CIPD deployment admission plugin in Python.

::

    from plugwire.grpc.cipd import plugin

    async def decide(admission: plugin.Admission, info: plugin.InstanceInfo) -> None:
        if admission.package.startswith("experimental/"):
            raise plugin.not_admitted("experimental packages are not allowed")

    if __name__ == "__main__":
        plugin.serve(decide, version="my-plugin 1.0")

:func:`serve_async` does what LUCI's ``plugins/admission.Run`` does: read the handshake line
from stdin, dial the host on 127.0.0.1 with the ticket as ``x-plugin-ticket``
metadata, call ``ListAdmissions``, run the handler for each admission concurrently
and resolve each exactly once (returning admits; :func:`not_admitted` gives
FailedPrecondition; a :class:`~plugwire.core.errors.RemoteError` gives its code; any
other exception gives Aborted). ``logging`` records go to the host through
``Host.Log``. The plugin stops when its stdin reaches EOF (the host closing it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import NoReturn

import anyio
import attrs

import grpc
import grpc.aio
from plugwire.core.errors import HandshakeError, PlugwireError, RemoteError
from plugwire.core.status import StatusCode

from . import _wire
from ._generated import cipd_admission_pb2, cipd_plugin_pb2
from .errors import AdmissionDeniedError, not_admitted
from .handshake import TICKET_METADATA_KEY, PluginHandshake
from .metadata import DEFAULT_PAGE_SIZE, MetadataEntry
from .pins import ObjectRef

__all__ = [
    "PROTOCOL_VERSION",
    "Admission",
    "Handler",
    "InstanceInfo",
    "not_admitted",
    "serve",
    "serve_async",
]

PROTOCOL_VERSION = _wire.PROTOCOL_VERSION

log = logging.getLogger("plugwire.grpc.cipd.plugin")

#: Status codes with which a ``ListAdmissions`` stream ends when the host goes away.
_ABORTING = frozenset(
    {grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
)

_MAX_HANDSHAKE = 64 * 1024


@attrs.frozen
class Admission:
    """One deployment to decide: ``package`` at ``instance`` from ``service_url``."""

    admission_id: str
    service_url: str
    package: str
    instance: ObjectRef

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @classmethod
    def from_pb(cls, msg: cipd_admission_pb2.Admission) -> Admission:
        return cls(msg.admission_id, msg.service_url, msg.package, _wire.ref_from_pb(msg.instance))


class InstanceInfo:
    """What a handler may ask the host about the instance being admitted."""

    def __init__(self, admission: Admission, client: _HostClient) -> None:
        self.admission = admission
        self._client = client

    async def visit_metadata(
        self, keys: Sequence[str] = (), page_size: int = 0
    ) -> AsyncIterator[MetadataEntry]:
        """Metadata entries of the instance, most recent first, fetched page by page.

        Only entries with the given ``keys`` (all when empty); ``page_size`` <= 0 means
        20. Stop early by breaking out of the loop. Raises
        :class:`~plugwire.core.errors.RemoteError` when ``ListMetadata`` fails (let it
        propagate: the admission is then resolved with that status).
        """
        adm = self.admission
        token = ""
        while True:
            response = await self._client.list_metadata(
                cipd_plugin_pb2.ListMetadataRequest(
                    service_url=adm.service_url,
                    package=adm.package,
                    instance=_wire.ref_to_pb(adm.instance),
                    keys=list(keys),
                    page_size=page_size if page_size > 0 else DEFAULT_PAGE_SIZE,
                    page_token=token,
                )
            )
            for entry in response.metadata:
                yield MetadataEntry.from_pb(entry)
            if not response.next_page_token:
                return
            token = response.next_page_token


#: An admission handler: return (or return ``True``) to admit, raise to refuse.
Handler = Callable[[Admission, InstanceInfo], Awaitable[object] | object]


class _HostClient:
    """Calls on the host with the ticket attached."""

    def __init__(self, channel: grpc.aio.Channel, ticket: str) -> None:
        self.metadata = ((TICKET_METADATA_KEY, ticket),)
        self._log = channel.unary_unary(  # type: ignore[call-arg]  # _registered_method
            _wire.LOG,
            request_serializer=cipd_plugin_pb2.LogRequest.SerializeToString,
            response_deserializer=lambda _b: None,
            _registered_method=True,
        )
        self._list_metadata = channel.unary_unary(  # type: ignore[call-arg]  # _registered_method
            _wire.LIST_METADATA,
            request_serializer=cipd_plugin_pb2.ListMetadataRequest.SerializeToString,
            response_deserializer=cipd_plugin_pb2.ListMetadataResponse.FromString,
            _registered_method=True,
        )
        self._resolve = channel.unary_unary(  # type: ignore[call-arg]  # _registered_method
            _wire.RESOLVE_ADMISSION,
            request_serializer=cipd_admission_pb2.ResolveAdmissionRequest.SerializeToString,
            response_deserializer=lambda _b: None,
            _registered_method=True,
        )
        self.list_admissions = channel.unary_stream(  # type: ignore[call-arg]  # _registered_method
            _wire.LIST_ADMISSIONS,
            request_serializer=cipd_admission_pb2.ListAdmissionsRequest.SerializeToString,
            response_deserializer=cipd_admission_pb2.Admission.FromString,
            _registered_method=True,
        )

    async def log(self, severity: str, message: str) -> None:
        await self._log(
            cipd_plugin_pb2.LogRequest(severity=severity, message=message), metadata=self.metadata
        )

    async def list_metadata(
        self, request: cipd_plugin_pb2.ListMetadataRequest
    ) -> cipd_plugin_pb2.ListMetadataResponse:
        try:
            response: cipd_plugin_pb2.ListMetadataResponse = await self._list_metadata(
                request, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise _remote_error(exc, "ListMetadata") from None
        return response

    async def resolve(self, admission_id: str, code: int, message: str) -> None:
        await self._resolve(
            cipd_admission_pb2.ResolveAdmissionRequest(
                admission_id=admission_id, status=_wire.status_pb(code, message)
            ),
            metadata=self.metadata,
        )


def _remote_error(exc: grpc.aio.AioRpcError, step: str) -> RemoteError:
    code = exc.code().value[0]
    cls = AdmissionDeniedError if code == StatusCode.FAILED_PRECONDITION else RemoteError
    return cls(exc.details() or "", code=code, peer="host", step=step)


def _severity(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class _HostLogHandler(logging.Handler):
    """Sends log records to the host's ``Host.Log``, in order, from one sender task.

    :meth:`drain` lets a handler's decision wait until the lines it logged have
    reached the host, as with LUCI's synchronous logger.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, level: int) -> None:
        super().__init__(level)
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._enqueued = 0
        self._sent = 0
        self._progress = asyncio.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        # gRPC's own logging while sending a record would feed back into us.
        return not record.name.startswith(("grpc", "asyncio")) and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = (_severity(record.levelno), self.format(record))
        except Exception:
            self.handleError(record)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._put(item)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: tuple[str, str]) -> None:
        self._enqueued += 1
        self._queue.put_nowait(item)

    async def pump(self, client: _HostClient) -> None:
        while True:
            item = await self._queue.get()
            try:
                await client.log(*item)
            except grpc.aio.AioRpcError as exc:
                print(f"cipd plugin: Host.Log failed: {exc.details()}", file=sys.stderr)
            self._sent += 1
            self._progress.set()
            self._progress = asyncio.Event()

    async def drain(self) -> None:
        """Wait until every record emitted so far was sent (or failed to send)."""
        target = self._enqueued
        while self._sent < target:
            await self._progress.wait()


class _Stdin:
    """Non-blocking reads of the handshake line, then a wait for EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""
        self._eof = False
        os.set_blocking(fd, False)

    async def _read(self) -> bytes:
        while True:
            try:
                return os.read(self.fd, 65536)
            except BlockingIOError:
                await anyio.wait_readable(self.fd)

    async def readline(self) -> bytes:
        while b"\n" not in self._buffer and not self._eof:
            chunk = await self._read()
            if not chunk:
                self._eof = True
            self._buffer += chunk
            if len(self._buffer) > _MAX_HANDSHAKE:
                break
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line + sep

    async def wait_eof(self) -> None:
        while not self._eof:
            if not await self._read():
                self._eof = True


async def serve_async(
    handler: Handler,
    *,
    version: str = "",
    stdin_fd: int | None = None,
    log_level: int = logging.INFO,
    forward_logs: bool = True,
) -> None:
    """Serve admissions until the host closes our stdin.

    Arguments:
        handler: called once per admission, concurrently; see the module docs.
        version: free text the host logs ("my-plugin 1.2").
        stdin_fd: where the handshake comes from (default: fd 0).
        log_level: records at or above it go to the host through ``Host.Log``.
        forward_logs: attach the ``Host.Log`` handler to the root logger.

    Raises :class:`~plugwire.core.errors.HandshakeError` for a bad handshake line,
    :class:`~plugwire.core.errors.RemoteError` when the host refuses
    ``ListAdmissions`` (a bad ticket, a protocol version it does not speak).
    """
    loop = _wire.require_asyncio("plugwire.grpc.cipd.plugin.serve_async")
    stdin = _Stdin(sys.stdin.fileno() if stdin_fd is None else stdin_fd)
    line = await stdin.readline()
    if not line:
        raise HandshakeError(
            "stdin closed before the handshake",
            peer="host",
            step="handshake",
            expected="one JSON line",
            seen="EOF",
        )
    handshake = PluginHandshake.parse(line)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{handshake.port}")
    client = _HostClient(channel, handshake.ticket)
    root = logging.getLogger()
    log_handler = _HostLogHandler(loop, log_level) if forward_logs else None
    saved_level = root.level
    error: PlugwireError | None = None
    try:
        async with anyio.create_task_group() as tg:
            if log_handler is not None:
                root.addHandler(log_handler)
                if root.level == logging.NOTSET or root.level > log_level:
                    root.setLevel(log_level)
                tg.start_soon(log_handler.pump, client)

            async def stop_on_eof() -> None:
                await stdin.wait_eof()
                log.debug("stdin closed: stopping")
                tg.cancel_scope.cancel()

            tg.start_soon(stop_on_eof)
            try:
                await _list_admissions(handler, client, version, tg, log_handler)
            except PlugwireError as exc:
                error = exc
                tg.cancel_scope.cancel()
            else:
                # The stream ended: like LUCI's plugins, linger until stdin closes.
                await anyio.sleep_forever()
    finally:
        if log_handler is not None:
            root.removeHandler(log_handler)
            root.setLevel(saved_level)
        with anyio.CancelScope(shield=True):
            await channel.close(grace=None)
    if error is not None:
        raise error


async def _list_admissions(
    handler: Handler,
    client: _HostClient,
    version: str,
    tg: anyio.abc.TaskGroup,
    logs: _HostLogHandler | None = None,
) -> None:
    call = client.list_admissions(
        cipd_admission_pb2.ListAdmissionsRequest(
            protocol_version=PROTOCOL_VERSION, plugin_version=version
        ),
        metadata=client.metadata,
    )
    try:
        async for message in call:
            tg.start_soon(_handle, handler, client, message, logs)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in _ABORTING:
            log.debug("ListAdmissions ended: %s", exc.code().name)
            return
        raise _remote_error(exc, "ListAdmissions") from None


async def _handle(
    handler: Handler,
    client: _HostClient,
    message: cipd_admission_pb2.Admission,
    logs: _HostLogHandler | None = None,
) -> None:
    admission = Admission.from_pb(message)
    code, text = StatusCode.OK, ""
    try:
        result = handler(admission, InstanceInfo(admission, client))
        if inspect.isawaitable(result):
            result = await result
        if result is False:
            code, text = StatusCode.FAILED_PRECONDITION, "not admitted"
    except RemoteError as exc:
        code, text = StatusCode(exc.code), exc.message
    except Exception as exc:
        log.exception("admission handler failed on %s", admission.package)
        code, text = StatusCode.ABORTED, f"exception in the admission handler: {exc!r}"
    if logs is not None:
        await logs.drain()  # what the handler logged reaches the host before its decision
    try:
        await client.resolve(admission.admission_id, code, text)
    except grpc.aio.AioRpcError as exc:
        print(
            f"cipd plugin: ResolveAdmission({admission.package}) failed: {exc.details()}",
            file=sys.stderr,
        )


def serve(handler: Handler, *, version: str = "", log_level: int = logging.INFO) -> NoReturn:
    """Run the plugin (:func:`serve_async`) in a fresh asyncio loop and exit.

    Exits 0 when the host closes stdin, 1 with the error on stderr otherwise.
    """
    try:
        asyncio.run(serve_async(handler, version=version, log_level=log_level))
    except PlugwireError as exc:
        print(f"cipd admission plugin: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
