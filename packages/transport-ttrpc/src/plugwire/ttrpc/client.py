"""The ttrpc client: many concurrent calls and streams over one connection.

A :class:`Client` owns no background task. The first caller waiting for a reply
reads the connection and dispatches every frame it sees to the call it belongs to;
when it has its own reply it hands the reading over to another waiter. So a client
can be created anywhere (``Client.from_stream(stream)``, ``await Client.connect(...)``)
without a task group, and a lone call costs one send and one receive. The
receive side of each call is a :class:`~plugwire.ttrpc._calls.Call`; streaming
calls are :class:`~plugwire.ttrpc._client_stream.ClientStream` objects.

Errors: a peer's error status raises :class:`~plugwire.core.errors.RemoteError`
(``code``, message, encoded ``details``); an expired deadline raises
:class:`~plugwire.ttrpc.errors.DeadlineExceededError`; a message over the limit
raises :class:`~plugwire.ttrpc.errors.OversizedMessageError` (sending: nothing is
sent; receiving: that call alone fails); a broken connection fails every pending
call with :class:`~plugwire.core.errors.ConnectionClosedError`; a malformed reply
raises :class:`~plugwire.core.errors.ProtocolError`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping, Sequence
from typing import Literal

import anyio
import anyio.abc

from plugwire.core.errors import (
    ClosedError,
    ConnectionClosedError,
    PlugwireError,
    ProtocolError,
)
from plugwire.core.transport import Address, Channel

from . import _sockets
from ._calls import Call, new_event, remote_error, running_loop
from ._client_stream import ClientStream
from ._envelope import EnvelopeError, decode_response, encode_request
from ._frame import (
    FLAG_REMOTE_CLOSED,
    FLAG_REMOTE_OPEN,
    MAX_MESSAGE_SIZE,
    TYPE_DATA,
    TYPE_NAMES,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    FrameDecoder,
    encode_frame,
)
from ._sockets import socket_stream
from ._writer import FrameWriter
from .errors import DeadlineExceededError, OversizedMessageError, oversize_message

__all__ = ["Client", "ClientStream", "Metadata", "normalize_metadata", "split_method"]

log = logging.getLogger("plugwire.ttrpc.client")

#: Metadata accepted by calls: a mapping (values may be lists) or (key, value) pairs.
Metadata = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]

#: Received items a stream buffers before it is failed (upstream uses 64 and a 1 s wait).
_STREAM_BUFFER = 4096
#: ... and at most this many bytes (a stream nobody reads cannot eat the memory).
_STREAM_BUFFER_BYTES = 64 << 20


def normalize_metadata(metadata: Metadata | None) -> list[tuple[str, str]]:
    """(key, value) pairs in order; mapping values that are sequences expand to pairs."""
    if not metadata:
        return []
    if isinstance(metadata, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in metadata.items():
            if isinstance(value, str):
                pairs.append((key, value))
            else:
                pairs.extend((key, v) for v in value)
        return pairs
    return [(k, v) for k, v in metadata]


def split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` (or ``pkg.Service/Method``) -> (service, method)."""
    service, sep, name = method.lstrip("/").rpartition("/")
    if not sep or not service or not name:
        from plugwire.core.errors import ConfigError

        raise ConfigError(
            "malformed method name", step="call", expected="/pkg.Service/Method", seen=method
        )
    return service, name


class Client(Channel):
    """A ttrpc client over one byte stream (unix or TCP socket, socketpair, or any
    :class:`anyio.abc.ByteStream`, e.g. one side of a multiplexer).

    Create with :meth:`connect` (address), :meth:`from_stream` (an anyio byte
    stream) or :meth:`from_socket` (a connected socket object or file descriptor).
    Use as ``async with`` or call :meth:`aclose`. Safe for any number of
    concurrent calls from tasks of one event loop.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        peer: str = "ttrpc server",
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self._stream = stream
        self.peer = peer
        self.max_message_size = max_message_size
        self._decoder = FrameDecoder(max_message_size)
        self._writer = FrameWriter(stream, peer)
        self._calls: dict[int, Call] = {}
        self._next_id = 1
        self._reading = False
        self._waiting: dict[int, Call] = {}
        # Unary calls awaiting their reply: the batching hint of a request frame
        # (long-lived streams, e.g. a broker or stdio stream, must not delay a lone call).
        self._unary = 0
        self._error: PlugwireError | None = None
        self._closed = False
        # The asyncio loop (False under trio), found on first use.
        self._loop: asyncio.AbstractEventLoop | Literal[False] | None = None

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_stream(
        cls,
        stream: anyio.abc.ByteStream,
        *,
        peer: str = "ttrpc server",
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> Client:
        """A client speaking ttrpc over ``stream``; closing the client closes it."""
        return cls(stream, peer=peer, max_message_size=max_message_size)

    @classmethod
    async def from_socket(
        cls,
        sock: socket.socket | int,
        *,
        peer: str = "ttrpc server",
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> Client:
        """A client over a connected socket (object or file descriptor, which the
        client takes ownership of)."""
        if isinstance(sock, int):
            sock = socket.socket(fileno=sock)
        stream = await socket_stream(sock)
        return cls(stream, peer=peer, max_message_size=max_message_size)

    @classmethod
    async def connect(
        cls,
        address: Address | str,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> Client:
        """Dial a unix (``unix:/path`` or ``/path``) or TCP (``host:port``) address.

        Raises :class:`ConnectionClosedError` naming the address when nothing listens.
        """
        addr = Address.parse(address) if isinstance(address, str) else address
        try:
            stream = await _sockets.connect(addr)
        except OSError as exc:
            raise ConnectionClosedError(
                f"cannot connect: {exc.strerror or exc}", peer=str(addr), step="connect"
            ) from exc
        return cls(stream, peer=str(addr), max_message_size=max_message_size)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the client was closed or the connection failed."""
        return self._closed or self._error is not None

    async def aclose(self) -> None:
        """Close the connection; pending calls fail with :class:`ConnectionClosedError`."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(
            ConnectionClosedError("ttrpc client was closed", peer=self.peer, step="close")
        )
        with anyio.CancelScope(shield=True):
            try:
                await self._stream.aclose()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    # -- unary --------------------------------------------------------------------

    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> bytes:
        """Call ``/service/method`` with encoded ``payload``; return the reply bytes."""
        service, name = split_method(method)
        return await self.call(service, name, payload, timeout=timeout, metadata=metadata)

    async def call(
        self,
        service: str,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> bytes:
        """A unary call to ``service``/``method``; returns the reply payload bytes.

        ``timeout`` (seconds) is sent as ``timeout_nano`` and enforced locally.
        """
        step = f"/{service}/{method}"
        if timeout is not None and timeout <= 0:
            raise DeadlineExceededError(peer=self.peer, step=step)
        body = encode_request(
            service,
            method,
            payload,
            int(timeout * 1e9) if timeout is not None else 0,
            normalize_metadata(metadata),
        )
        self._unary += 1
        try:
            call = await self._start(body, 0, step, self._unary > 1)
        except BaseException:
            self._unary -= 1
            raise
        try:
            if timeout is None:
                await self._wait(call)
            else:
                with anyio.move_on_after(timeout):
                    await self._wait(call)
                if not call.items and call.error is None:
                    raise DeadlineExceededError(peer=self.peer, step=step)
        finally:
            self._unary -= 1
            if not call.done:
                call.done = True
                self._calls.pop(call.sid, None)
        if call.error is not None and not call.items:
            raise call.error
        typ, _flags, data = call.items.popleft()
        if typ != TYPE_RESPONSE:
            raise ProtocolError(
                f"unexpected {TYPE_NAMES.get(typ, 'unknown')} message on a unary call",
                peer=self.peer,
                step=step,
                expected="response",
                seen=TYPE_NAMES.get(typ, typ),
            )
        try:
            status, reply = decode_response(data)
        except EnvelopeError as exc:
            raise ProtocolError(
                f"malformed response: {exc}", peer=self.peer, step=step, seen=data[:64]
            ) from exc
        if status.code:
            raise remote_error(status.code, status.message, status.details, self.peer, step)
        return reply

    # -- streams ------------------------------------------------------------------

    async def open_stream(
        self,
        service: str,
        method: str,
        payload: bytes | None = None,
        *,
        client_streaming: bool,
        server_streaming: bool,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ClientStream:
        """Start a streaming call. ``payload`` is the request of a method whose client
        side does not stream (it may also seed a client stream). Returns the
        :class:`ClientStream` to send on and receive from."""
        step = f"/{service}/{method}"
        deadline = anyio.current_time() + timeout if timeout is not None else None
        body = encode_request(
            service,
            method,
            payload,
            int(timeout * 1e9) if timeout is not None else 0,
            normalize_metadata(metadata),
        )
        flags = FLAG_REMOTE_OPEN if client_streaming else FLAG_REMOTE_CLOSED
        call = await self._start(body, flags, step, len(self._calls) > 0)
        return ClientStream(self, call, step, client_streaming, server_streaming, deadline)

    # -- internals ----------------------------------------------------------------

    def _check_open(self, step: str) -> None:
        if self._closed:
            raise ClosedError("ttrpc client is closed", peer=self.peer, step=step)
        if self._error is not None:
            raise ConnectionClosedError(
                self._error.message, peer=self.peer, step=step
            ) from self._error

    def _check_size(self, size: int, step: str) -> None:
        if size > self.max_message_size:
            raise OversizedMessageError(
                oversize_message(size, self.max_message_size),
                size=size,
                limit=self.max_message_size,
                peer=self.peer,
                step=step,
            )

    async def _start(self, body: bytes, flags: int, step: str, cork: bool) -> Call:
        """Send the request frame of a new call; ``cork``: other calls are in flight,
        so the frame may wait for the end of this loop iteration to leave batched."""
        self._check_open(step)
        self._check_size(len(body), step)
        sid = self._next_id
        if sid > 0xFFFFFFFF:
            raise ProtocolError(
                "stream ids are exhausted on this connection; open a new one",
                peer=self.peer,
                step=step,
                expected="a stream id below 2**32",
                seen=sid,
            )
        self._next_id += 2
        call = Call(sid)
        self._calls[sid] = call
        try:
            await self._writer.write(encode_frame(sid, TYPE_REQUEST, flags, body), cork)
        except ConnectionClosedError as exc:
            self._calls.pop(sid, None)
            self._fail_all(exc)
            raise ConnectionClosedError(exc.message, peer=self.peer, step=step) from exc
        except BaseException:
            self._calls.pop(sid, None)
            raise
        return call

    async def _send(self, sid: int, flags: int, data: bytes, step: str) -> None:
        self._check_open(step)
        self._check_size(len(data), step)
        try:
            await self._writer.write(encode_frame(sid, TYPE_DATA, flags, data))
        except ConnectionClosedError as exc:
            self._fail_all(exc)
            raise ConnectionClosedError(exc.message, peer=self.peer, step=step) from exc

    def _fail_all(self, exc: PlugwireError) -> None:
        if self._error is None:
            self._error = exc
            self._writer.fail(exc)
        calls = list(self._calls.values())
        self._calls.clear()
        for call in calls:
            if call.error is None:
                call.error = ConnectionClosedError(exc.message, peer=self.peer, step=exc.step)
                call.error.__cause__ = exc
            call.done = True
            call.wake()

    async def _wait(self, call: Call) -> None:
        """Return once ``call`` has an item or an error, reading the connection if
        nobody else is."""
        while not call.items and call.error is None:
            if self._reading:
                self._waiting[call.sid] = call
                try:
                    loop = self._loop
                    if loop is None:
                        loop = self._loop = running_loop()
                    if loop:
                        call.future = loop.create_future()
                        await call.future
                    else:
                        call.event = new_event()
                        await call.event.wait()
                finally:
                    self._waiting.pop(call.sid, None)
                    call.future = None
                    call.event = None
                    if not self._reading:
                        self._handoff()
                continue
            self._reading = True
            try:
                await self._read_until(call)
            finally:
                self._reading = False
                self._handoff()

    def _handoff(self) -> None:
        """Wake one waiter that still needs a reply so that it takes over reading."""
        for other in self._waiting.values():
            if other.parked and not other.items and other.error is None:
                other.wake()
                return

    async def _read_until(self, call: Call) -> None:
        stream = self._stream
        feed = self._feed
        while not call.items and call.error is None:
            if self._error is not None:
                call.error = ConnectionClosedError(self._error.message, peer=self.peer)
                return
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                reason = "connection closed by peer"
                if self._decoder.pending:
                    reason += f" in the middle of a frame ({self._decoder.pending} bytes buffered)"
                self._fail_all(ConnectionClosedError(reason, peer=self.peer, step="receive"))
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._fail_all(
                    ConnectionClosedError(
                        f"connection failed: {exc!r}", peer=self.peer, step="receive"
                    )
                )
                return
            feed(data)

    def _feed(self, data: bytes) -> None:
        calls = self._calls
        for sid, typ, flags, payload, oversized in self._decoder.feed(data):
            call = calls.get(sid)
            if call is None:
                log.debug("ttrpc: received %s on inactive stream %d", TYPE_NAMES.get(typ, typ), sid)
                continue
            if oversized:
                call.error = OversizedMessageError(
                    oversize_message(oversized, self.max_message_size),
                    size=oversized,
                    limit=self.max_message_size,
                    peer=self.peer,
                    step="receive",
                )
                call.done = True
                del calls[sid]
            elif typ in (TYPE_RESPONSE, TYPE_DATA):
                call.items.append((typ, flags, payload))
                call.buffered += len(payload)
                if typ == TYPE_RESPONSE or flags & FLAG_REMOTE_CLOSED:
                    call.done = True
                    del calls[sid]
                elif len(call.items) > _STREAM_BUFFER or call.buffered > _STREAM_BUFFER_BYTES:
                    call.error = ProtocolError(
                        "ttrpc: stream buffer full", peer=self.peer, step="receive"
                    )
                    call.done = True
                    del calls[sid]
            else:
                call.error = ProtocolError(
                    "unexpected message type received",
                    peer=self.peer,
                    step="receive",
                    expected="response or data",
                    seen=f"type {typ}",
                )
                call.done = True
                del calls[sid]
            call.wake()
