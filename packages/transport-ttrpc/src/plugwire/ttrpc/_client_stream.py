"""Client-side stream objects: :class:`ClientStream`, one streaming call of a
:class:`~plugwire.ttrpc.client.Client`.

The client starts the call and reads the connection; the stream sends data frames
through it and takes the frames dispatched to its call (see :mod:`._calls`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from plugwire.core.errors import ClosedError, ProtocolError

from ._calls import Call, CallOwner, remote_error
from ._envelope import EnvelopeError, decode_response
from ._frame import FLAG_NO_DATA, FLAG_REMOTE_CLOSED, TYPE_RESPONSE
from .errors import DeadlineExceededError

__all__ = ["ClientStream"]


class ClientStream:
    """The client side of a streaming call.

    ``send(payload)`` / ``close_send()`` when the method streams from the client;
    ``recv()`` returns the next message's bytes or ``None`` at the end; ``async for``
    iterates until the end. A non-OK final status raises :class:`RemoteError`.
    """

    def __init__(
        self,
        client: CallOwner,
        call: Call,
        step: str,
        client_streaming: bool,
        server_streaming: bool,
        deadline: float | None,
    ) -> None:
        self._client = client
        self._call = call
        self.method = step
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming
        self._deadline = deadline
        self._local_closed = not client_streaming
        self._remote_closed = False

    @property
    def stream_id(self) -> int:
        return self._call.sid

    async def send(self, payload: bytes) -> None:
        """Send one message. Raises :class:`ClosedError` after :meth:`close_send`."""
        if not self.client_streaming:
            raise ProtocolError(
                "cannot send data from non-streaming client",
                peer=self._client.peer,
                step=self.method,
            )
        if self._local_closed:
            raise ClosedError("stream closed for sending", peer=self._client.peer, step=self.method)
        await self._client._send(self._call.sid, 0, payload, self.method)

    async def close_send(self) -> None:
        """Tell the server no more messages follow (idempotent)."""
        if self._local_closed:
            return
        self._local_closed = True
        await self._client._send(
            self._call.sid, FLAG_REMOTE_CLOSED | FLAG_NO_DATA, b"", self.method
        )

    async def recv(self) -> bytes | None:
        """The next message's bytes, or ``None`` when the server finished the stream."""
        if self._remote_closed:
            return None
        call = self._call
        client = self._client
        if not call.items and call.error is None:
            if self._deadline is None:
                await client._wait(call)
            else:
                with anyio.CancelScope(deadline=self._deadline):
                    await client._wait(call)
                if not call.items and call.error is None:
                    self._finish()
                    raise DeadlineExceededError(peer=client.peer, step=self.method)
        if not call.items:
            self._finish()
            assert call.error is not None
            raise call.error
        typ, flags, data = call.items.popleft()
        call.buffered -= len(data)
        if typ == TYPE_RESPONSE:
            self._remote_closed = True
            try:
                status, reply = decode_response(data)
            except EnvelopeError as exc:
                raise ProtocolError(
                    f"malformed response: {exc}", peer=client.peer, step=self.method
                ) from exc
            if status.code:
                raise remote_error(
                    status.code, status.message, status.details, client.peer, self.method
                )
            return reply
        if not self.server_streaming:
            self._finish()
            raise ProtocolError(
                "received data from non-streaming server", peer=client.peer, step=self.method
            )
        if flags & FLAG_REMOTE_CLOSED:
            self._remote_closed = True
            if flags & FLAG_NO_DATA:
                return None
        return data

    def _finish(self) -> None:
        self._remote_closed = True
        if not self._call.done:
            self._call.done = True
            self._client._calls.pop(self._call.sid, None)

    async def aclose(self) -> None:
        """Stop listening to this stream (the server is not told; late frames are dropped)."""
        self._finish()

    async def __aenter__(self) -> ClientStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.recv()
            if item is None:
                return
            yield item
