"""Follow a container's log through the API server (``pods/log?follow=true``).

The stream is read in a worker thread and handed to async code line by line. It is
re-opened when it ends or times out (resuming after the last timestamp seen, so
no line is delivered twice), and retried while the container has no log yet.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from plugwire.core._pipes import LineBuffer

from .api import KubeAPI
from .errors import KubeAPIError

__all__ = ["LogFollow", "LogLine", "describe_error", "follow_logs"]

_log = logging.getLogger("plugwire.kube")

#: Seconds without any log output after which the stream is re-opened.
READ_TIMEOUT = 60.0


class LogLine(str):
    """One container log line; ``timestamp`` is the kubelet's RFC 3339 timestamp."""

    timestamp: str

    def __new__(cls, text: str, timestamp: str = "") -> LogLine:
        obj = super().__new__(cls, text)
        obj.timestamp = timestamp
        return obj


def _close_quietly(resp: Any) -> None:
    with contextlib.suppress(Exception):
        resp.close()


def _split(raw: bytes) -> tuple[str, str]:
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    ts, sep, rest = text.partition(" ")
    if sep and ts[:4].isdigit() and ts.endswith("Z"):
        return ts, rest
    return "", text


class _Follower:
    def __init__(
        self, api: KubeAPI, namespace: str, pod: str, container: str, retry_interval: float
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.retry_interval = retry_interval
        self.stopped = threading.Event()
        self._response: Any = None
        self._lock = threading.Lock()
        self.last_ts = ""
        self.opened = 0
        self.last_error: BaseException | None = None

    def stop(self) -> None:
        """Stop following; never blocks (the worker may be inside a socket read)."""
        self.stopped.set()
        with self._lock:
            resp = self._response
        if resp is None:
            return
        # Shutting the socket down wakes a blocked read at once; closing the response
        # can wait for the reader's lock, so it happens off the caller's thread.
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        threading.Thread(target=_close_quietly, args=(resp,), daemon=True).start()

    def _open(self) -> Any:
        kwargs: dict[str, Any] = {
            "container": self.container,
            "follow": True,
            "timestamps": True,
            "_preload_content": False,
            "_request_timeout": (self.api.timeout, READ_TIMEOUT),
        }
        if self.last_ts:
            kwargs["since_time"] = self.last_ts
        return self.api.core.read_namespaced_pod_log(self.pod, self.namespace, **kwargs)

    def run(self, send: Any) -> None:
        """Blocking: deliver lines with ``send(line)`` (an async function) until stopped."""
        delay = self.retry_interval
        while not self.stopped.is_set():
            try:
                resp = self._open()
            except Exception as exc:
                self.last_error = exc
                if self.stopped.wait(delay):
                    return
                delay = min(delay * 2, 1.0)
                continue
            with self._lock:
                self._response = resp
            self.opened += 1
            delay = self.retry_interval
            try:
                # bounded lines: a pod printing megabytes without a newline cannot
                # grow the host's memory (the rest of the line is dropped, marked)
                buffer = LineBuffer()
                for chunk in resp.stream(4096, decode_content=True):
                    if self.stopped.is_set():
                        return
                    for line in buffer.feed(chunk):
                        self._deliver(line.encode(), send)
                for line in buffer.flush():
                    self._deliver(line.encode(), send)
            except Exception as exc:
                self.last_error = exc
            finally:
                with self._lock:
                    self._response = None
                try:
                    resp.release_conn()
                except Exception:  # pragma: no cover - best effort
                    pass
            if self.stopped.wait(delay):
                return

    def _deliver(self, raw: bytes, send: Any) -> None:
        ts, text = _split(raw)
        if ts and self.last_ts and ts <= self.last_ts:
            return  # already delivered before a reconnect
        if ts:
            self.last_ts = ts
        anyio.from_thread.run(send, LogLine(text, ts))


class LogFollow:
    """A followed container log: iterate ``lines``; ``last_error`` is the latest failure."""

    def __init__(self, follower: _Follower, lines: MemoryObjectReceiveStream[LogLine]) -> None:
        self._follower = follower
        self.lines = lines

    @property
    def last_error(self) -> BaseException | None:
        return self._follower.last_error

    @property
    def opened(self) -> int:
        """How many times the log stream was opened successfully."""
        return self._follower.opened

    def stop(self) -> None:
        """Stop following (the worker thread ends at its next line or timeout)."""
        self._follower.stop()


@contextlib.asynccontextmanager
async def follow_logs(
    api: KubeAPI,
    namespace: str,
    pod: str,
    container: str,
    *,
    retry_interval: float = 0.1,
) -> AsyncIterator[LogFollow]:
    """Follow the container's log for the duration of the block.

    ``async with follow_logs(api, ns, pod, c) as log: async for line in log.lines: ...``

    While the log is not available (the container has not started, the kubelet has
    not set it up yet) the request is retried every ``retry_interval`` seconds,
    growing to 1 s. Errors never end the iteration (see ``last_error``); leaving the
    block stops following.
    """
    follower = _Follower(api, namespace, pod, container, retry_interval)
    send_stream, receive_stream = anyio.create_memory_object_stream[LogLine](1024)

    async def pump() -> None:
        async with send_stream:
            await anyio.to_thread.run_sync(follower.run, send_stream.send, abandon_on_cancel=True)

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        try:
            with receive_stream:
                yield LogFollow(follower, receive_stream)
        finally:
            follower.stop()
            tg.cancel_scope.cancel()
            _log.debug(
                "stopped following %s/%s[%s] after %.1fs (%d opens, last error %r)",
                namespace,
                pod,
                container,
                time.monotonic() - started,
                follower.opened,
                follower.last_error,
            )


def describe_error(exc: BaseException | None) -> str:
    """A short text for the last error a follower saw (for timeouts)."""
    if exc is None:
        return "no error"
    if isinstance(exc, KubeAPIError):
        return str(exc)
    from .retry import status_and_reason

    status, reason = status_and_reason(exc)
    body = getattr(exc, "body", None)
    return f"HTTP {status} {reason}: {body}" if status else reason
