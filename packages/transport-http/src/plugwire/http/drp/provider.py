"""Writing a dr-provision plugin provider in Python.

Subclass :class:`Provider` and implement :meth:`Provider.config`; implement the
optional methods you need (only the ones you override are offered, as the Go
library only offers the interfaces a provider satisfies). Methods may be plain or
``async``. Raise :class:`~plugwire.http.drp.errors.ProviderError` to answer with a
``models.Error``; any other exception becomes a ``500`` error naming it.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from plugwire.core.errors import ConnectionClosedError, PlugwireError

from ..client import HttpClient
from .errors import ProviderError
from .models import Action, Error, Event, LogLine, PluginProvider

__all__ = ["SERVER_API", "Provider", "ProviderContext", "call_maybe_async"]

#: Where a provider posts back to the server, on the ``FROM`` socket.
SERVER_API = "/api-server-plugin/v4"

T = TypeVar("T")


async def call_maybe_async(fn: Callable[..., T | Awaitable[T]], *args: Any) -> T:
    """Call ``fn`` and await the result when it is awaitable."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


def _level_name(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


class _ForwardHandler(logging.Handler):
    """Queues log records as ``logger.Line`` for the ``/log`` endpoint."""

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(logging.DEBUG)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = LogLine(
                message=self.format(record),
                level=_level_name(record.levelno),
                service=self.ctx.definition.name,
                file=record.pathname,
                line=record.lineno,
            )
            self.ctx._queue_log(line)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class ProviderContext:
    """What a provider sees of its server: its environment and the callbacks.

    ``endpoint``/``token``/``fileserver``/``webroot`` come from ``RS_ENDPOINT``,
    ``RS_TOKEN``, ``RS_FILESERVER`` and ``RS_WEBROOT``. ``logger`` forwards its
    records to the server's ``/log`` while listening (and to stderr otherwise).
    """

    def __init__(
        self,
        definition: PluginProvider,
        *,
        environ: Mapping[str, str] | None = None,
        client: HttpClient | None = None,
        server_socket: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        env = os.environ if environ is None else environ
        self.definition = definition
        self.endpoint = env.get("RS_ENDPOINT") or "https://127.0.0.1:8092"
        self.token = env.get("RS_TOKEN", "")
        self.fileserver = env.get("RS_FILESERVER", "")
        self.webroot = env.get("RS_WEBROOT", "")
        self.client = client
        self.server_socket = server_socket
        self.connect_timeout = connect_timeout
        self._reached = server_socket is None
        self._reach_lock = anyio.Lock()
        self.logger = logging.getLogger(f"plugwire.drp.provider.{definition.name or 'provider'}")
        self._log_send: MemoryObjectSendStream[LogLine] | None = None
        self._log_pending = 0
        self._log_idle = anyio.Event()
        self.dropped_logs = 0

    # -- calls into the server -------------------------------------------------

    def _need_client(self, step: str) -> HttpClient:
        if self.client is None:
            raise ProviderError(
                f"No client to reach the server for {step}", code=400, model="", type="plugin-mux"
            )
        return self.client

    async def _reach_server(self, step: str) -> HttpClient:
        """The client, once the server socket accepts a connection.

        Like the Go library, a provider does not need the server's socket at
        ``listen``: it connects the first time it calls back. That first time it
        retries (backing off from 10 ms to 0.5 s) for at most ``connect_timeout``
        seconds, then raises :class:`~plugwire.core.errors.ConnectionClosedError`
        naming the socket."""
        client = self._need_client(step)
        if self._reached:
            return client
        async with self._reach_lock:
            if self._reached:
                return client
            assert self.server_socket is not None
            delay, last = 0.01, ""
            with anyio.move_on_after(self.connect_timeout):
                while True:
                    try:
                        stream = await anyio.connect_unix(self.server_socket)
                    except OSError as exc:
                        last = exc.strerror or str(exc)
                        await anyio.sleep(delay)
                        delay = min(delay * 2, 0.5)
                        continue
                    await stream.aclose()
                    self._reached = True
                    return client
            raise ConnectionClosedError(
                f"cannot reach the server socket within {self.connect_timeout} s",
                peer="dr-provision",
                step=step,
                expected=f"a server on {self.server_socket}",
                seen=last,
            )

    async def _post(self, path: str, body: Any) -> Any:
        client = await self._reach_server(path)
        resp = await client.post_json(SERVER_API + path, body)
        if resp.status >= 400:
            try:
                raise ProviderError.from_model(
                    Error.from_json(resp.decode_json()), peer="dr-provision", step=f"POST {path}"
                )
            except PlugwireError as exc:
                if isinstance(exc, ProviderError):
                    raise
                raise ProviderError(
                    f"server answered {resp.status}", code=resp.status, step=f"POST {path}"
                ) from exc
        return resp.decode_json() if resp.body.strip() else None

    async def publish(self, type: str, action: str, key: str, obj: Any = None) -> None:
        """Send a ``models.Event`` to the server (``POST /publish``)."""
        await self._post("/publish", Event(type=type, action=action, key=key, object=obj).to_json())

    async def leaving(self, error: Error | None = None) -> None:
        """Tell the server this provider is about to exit (``POST /leaving``)."""
        await self._post("/leaving", (error or Error(code=200)).to_json())

    async def log(self, level: str, message: str) -> None:
        """Send one ``logger.Line`` to the server now (``POST /log``)."""
        line = LogLine(message=message, level=level, service=self.definition.name)
        await self._post("/log", line.to_json())

    async def list_objects(self, prefix: str) -> list[Any]:
        """The objects the server stores under ``prefix`` (``GET /objects/<prefix>``)."""
        client = await self._reach_server("objects")
        resp = await client.get(f"{SERVER_API}/objects/{prefix}")
        if resp.status >= 400:
            raise ProviderError(
                f"Failed to list {prefix}: HTTP {resp.status}",
                code=400,
                model="",
                type="plugin-mux",
            )
        doc = resp.decode_json(peer="dr-provision", step=f"objects/{prefix}")
        if not isinstance(doc, list):
            raise ProviderError(
                f"Failed to marshal list {prefix}", code=400, model="", type="plugin-mux"
            )
        return doc

    # -- log forwarding --------------------------------------------------------

    def _queue_log(self, line: LogLine) -> None:
        if self._log_send is None:
            return
        try:
            self._log_send.send_nowait(line)
            self._log_pending += 1
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.dropped_logs += 1

    async def forward_logs(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Forward the ``logger``'s records to ``/log`` until cancelled."""
        send, receive = anyio.create_memory_object_stream[LogLine](1000)
        handler = _ForwardHandler(self)
        self._log_send = send
        self.logger.addHandler(handler)
        task_status.started()
        try:
            async with receive:
                async for line in receive:
                    try:
                        await self._post("/log", line.to_json())
                    except PlugwireError as exc:
                        os.write(
                            2, f"local log: {line.message} (forwarding failed: {exc})\n".encode()
                        )
                    finally:
                        self._log_pending -= 1
                        if not self._log_pending:
                            idle, self._log_idle = self._log_idle, anyio.Event()
                            idle.set()
        finally:
            self.logger.removeHandler(handler)
            self._log_send = None
            send.close()

    async def flush_logs(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until queued log lines have been forwarded."""
        if self._log_send is None or not self._log_pending:
            return
        with anyio.move_on_after(timeout):
            await self._log_idle.wait()


class Provider:
    """Base class of a Python plugin provider; override what you implement.

    The ``ctx`` argument of every method is the :class:`ProviderContext`.
    """

    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> Awaitable[None] | None:
        """Mandatory: (re)configure from the Plugin object's Params."""
        raise NotImplementedError("a provider must implement config()")

    def action(self, ctx: ProviderContext, action: Action) -> Any:
        """Optional: run one of the declared AvailableActions; return its result."""
        raise NotImplementedError

    def publish(self, ctx: ProviderContext, event: Event) -> Awaitable[None] | None:
        """Optional: handle an event (offered only with ``HasPublish``)."""
        raise NotImplementedError

    def select_events(self) -> Sequence[str]:
        """Optional: the events wanted from the event stream (excludes HasPublish)."""
        raise NotImplementedError

    def stop(self, ctx: ProviderContext) -> Awaitable[None] | None:
        """Optional: clean up before the process exits on ``/stop``."""
        raise NotImplementedError

    def unpack(
        self, ctx: ProviderContext, directory: Path
    ) -> Mapping[str, bytes | str] | Awaitable[Mapping[str, bytes | str] | None] | None:
        """Optional: write embedded assets into ``directory``, or return them as a
        mapping of relative names to contents: they are then written by
        :func:`plugwire.http.drp.files.write_files`, which refuses a name leaving
        the directory (``..``, absolute, through or onto a symlink)."""
        raise NotImplementedError

    def validate(self, ctx: ProviderContext) -> PluginProvider | Awaitable[PluginProvider]:
        """Optional: check the environment at ``define`` time; return the definition."""
        raise NotImplementedError

    def implements(self, name: str) -> bool:
        """Whether this provider overrides the optional method ``name``."""
        mine = getattr(type(self), name, None)
        return mine is not None and mine is not getattr(Provider, name)
