"""Test helpers: a raw-frame peer for conformance tests and the example server.

:class:`RawPeer` speaks bare ttrpc frames over any anyio byte stream, so a test
can send what no well-behaved client would (bad stream ids, garbage, truncated or
oversized frames) and inspect the exact replies.
"""

from __future__ import annotations

import anyio
import anyio.abc

from ._envelope import decode_response, encode_request
from ._frame import Frame, FrameDecoder, encode_frame
from .example import SERVICE, StreamingServicer
from .server import Server

__all__ = ["RawPeer", "make_server"]


def make_server(**kwargs: int) -> Server:
    """A :class:`Server` with the example Streaming service registered."""
    server = Server(**kwargs)
    server.add_servicer(StreamingServicer(), SERVICE)
    return server


class RawPeer:
    """Speaks raw frames to a server through a socketpair."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def request(
        self, sid: int, service: str, method: str, payload: bytes = b"", flags: int = 0
    ) -> None:
        await self.send(encode_frame(sid, 1, flags, encode_request(service, method, payload)))

    async def frame(self, timeout: float = 5) -> Frame:
        with anyio.fail_after(timeout):
            while not self.frames:
                data = await self.stream.receive()
                self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    async def status(self, timeout: float = 5) -> tuple[int, int, str]:
        """(stream id, code, message) of the next frame, which must be a Response."""
        sid, typ, _flags, data, _ = await self.frame(timeout)
        assert typ == 2, f"expected a response frame, got type {typ}"
        status, _payload = decode_response(data)
        return sid, status.code, status.message
