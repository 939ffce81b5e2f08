"""A plugin child's output pipes, for :class:`~plugwire.core.process.PluginProcess`.

The pipes are non-blocking file descriptors waited on with :func:`anyio.wait_readable`
(asyncio and trio alike). Each is pumped into a line callback (or a raw chunk
callback); stdout lines nobody else takes are queued for handshake readers.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
from collections.abc import Callable
from typing import IO

import anyio
import anyio.abc

__all__ = ["MAX_LINE_BYTES", "TRUNCATED_MARKER", "ChildOutput", "LineBuffer", "write_all"]


#: The longest line kept from a plugin's output; the rest of a longer line is dropped
#: and the kept part ends with :data:`TRUNCATED_MARKER` (a flooding plugin cannot grow
#: the host's memory).
MAX_LINE_BYTES = 256 * 1024
TRUNCATED_MARKER = " [plugwire: line truncated, {n} bytes dropped]"


class LineBuffer:
    """Splits a byte stream into decoded lines of at most ``max_line`` bytes each.

    A longer line is cut: its first ``max_line`` bytes are kept, the rest up to the
    next newline is counted and dropped, and the line ends with the truncation marker.
    Buffered bytes never exceed ``max_line`` whatever the stream holds.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max = max_line
        self._partial = b""
        self._dropped = 0  # bytes dropped from the current (over-long) line

    def _line(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if self._dropped:
            text += TRUNCATED_MARKER.format(n=self._dropped)
            self._dropped = 0
        return text

    def _keep(self, raw: bytes) -> bytes:
        if len(raw) > self._max:
            self._dropped += len(raw) - self._max
            return raw[: self._max]
        return raw

    def feed(self, data: bytes) -> list[str]:
        *lines, rest = data.split(b"\n")
        out: list[str] = []
        if lines:
            first, lines = lines[0], lines[1:]
            out.append(self._line(self._keep(self._partial + first)))
            self._partial = b""
            out.extend(self._line(self._keep(line)) for line in lines)
        self._partial = self._keep(self._partial + rest)
        return out

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [self._line(rest)] if rest or self._dropped else []


class ChildOutput:
    """The child's stdout and stderr pipes: the pump tasks, the queue of unread stdout
    lines (at most ``stdout_buffer``; the oldest is dropped) and when each pipe ended."""

    def __init__(self, *, stdout_buffer: int, max_line: int = MAX_LINE_BYTES) -> None:
        self._stdout_limit = stdout_buffer
        self._max_line = max_line
        self._stdout_lines: collections.deque[str] = collections.deque()
        self._stdout_event = anyio.Event()
        self._stdout_eof = False
        #: Set once stdout reached EOF (or there is no stdout pipe).
        self.stdout_eof = anyio.Event()
        #: Set once stderr reached EOF (or there is no stderr pipe).
        self.stderr_eof = anyio.Event()
        self._open_fds: dict[int, IO[bytes]] = {}

    def watch(
        self,
        task_group: anyio.abc.TaskGroup,
        pipe: IO[bytes] | None,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
        on_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        """Pump ``pipe`` in ``task_group``: each line to ``on_line`` (each chunk as read
        to ``on_bytes`` instead, when given), then ``on_eof``. No pipe: ``on_eof`` now."""
        if pipe is None:
            on_eof()
            return
        fd = pipe.fileno()
        os.set_blocking(fd, False)
        self._open_fds[fd] = pipe
        task_group.start_soon(self._pump, fd, on_line, on_eof, on_bytes)

    # -- the stdout line queue -------------------------------------------------

    def push_stdout(self, line: str) -> str | None:
        """Queue a stdout line; returns the oldest line if it had to be dropped."""
        dropped = None
        if len(self._stdout_lines) >= self._stdout_limit:
            dropped = self._stdout_lines.popleft()
        self._stdout_lines.append(line)
        self._wake_stdout_readers()
        return dropped

    async def next_stdout_line(self) -> str | None:
        """The next queued stdout line, or ``None`` once stdout ended and all are read."""
        while not self._stdout_lines:
            if self._stdout_eof:
                return None
            await self._stdout_event.wait()
        return self._stdout_lines.popleft()

    def stdout_done(self) -> None:
        self._stdout_eof = True
        self.stdout_eof.set()
        self._wake_stdout_readers()

    def stderr_done(self) -> None:
        self.stderr_eof.set()

    def _wake_stdout_readers(self) -> None:
        event, self._stdout_event = self._stdout_event, anyio.Event()
        event.set()

    # -- pumping ---------------------------------------------------------------

    async def _pump(
        self,
        fd: int,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
        on_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        buffer = LineBuffer(self._max_line)
        try:
            while fd in self._open_fds:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    try:
                        await anyio.wait_readable(fd)
                    except anyio.ClosedResourceError:
                        break
                    continue
                except OSError as exc:
                    if exc.errno in (errno.EBADF, errno.EIO):
                        break
                    raise
                if not data:
                    break
                if on_bytes is not None:
                    on_bytes(data)
                    continue
                for line in buffer.feed(data):
                    on_line(line)
            for line in buffer.flush():
                on_line(line)
        finally:
            self._close_fd(fd)
            on_eof()

    def close_all(self) -> None:
        """Close the pipes still open, waking their pumps (they end and report EOF)."""
        for fd in list(self._open_fds):
            self._close_fd(fd, notify=True)

    def _close_fd(self, fd: int, *, notify: bool = False) -> None:
        stream = self._open_fds.pop(fd, None)
        if stream is not None:
            if notify:
                anyio.notify_closing(fd)
            with contextlib.suppress(OSError):
                stream.close()


async def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the non-blocking ``fd``, waiting while it is full.
    Raises :class:`BrokenPipeError` when the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        view = view[n:]
