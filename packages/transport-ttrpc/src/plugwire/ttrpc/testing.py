"""Test helpers: a raw-frame peer for conformance tests and the example server.

:class:`RawPeer` speaks bare ttrpc frames over any anyio byte stream, so a test
can send what no well-behaved client would (bad stream ids, garbage, truncated or
oversized frames) and inspect the exact replies.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ._envelope import decode_response, encode_request
from ._frame import MAX_MESSAGE_SIZE, Frame, FrameDecoder, encode_frame
from .credentials import PeerCheck
from .example import SERVICE, StreamingServicer
from .server import Server

__all__ = ["RawPeer", "make_server", "reference_envelope_classes"]


def make_server(
    *, max_message_size: int = MAX_MESSAGE_SIZE, handshake: PeerCheck | None = None
) -> Server:
    """A :class:`Server` with the example Streaming service registered."""
    server = Server(max_message_size=max_message_size, handshake=handshake)
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


def reference_envelope_classes() -> tuple[Any, Any]:
    """``ttrpc.Request`` and ``ttrpc.Response`` message classes built by protobuf from
    descriptors in a private pool: a reference codec to check the hand-written one."""
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto(
        name="a.proto", package="google.protobuf", syntax="proto3"
    )
    m = any_file.message_type.add(name="Any")
    m.field.add(name="type_url", number=1, type=9, label=1)
    m.field.add(name="value", number=2, type=12, label=1)
    pool.Add(any_file)
    f = descriptor_pb2.FileDescriptorProto(
        name="r.proto", package="ttrpc", syntax="proto3", dependency=["a.proto"]
    )
    st = f.message_type.add(name="Status")
    st.field.add(name="code", number=1, type=5, label=1)
    st.field.add(name="message", number=2, type=9, label=1)
    st.field.add(name="details", number=3, type=11, label=3, type_name=".google.protobuf.Any")
    kv = f.message_type.add(name="KeyValue")
    kv.field.add(name="key", number=1, type=9, label=1)
    kv.field.add(name="value", number=2, type=9, label=1)
    rq = f.message_type.add(name="Request")
    rq.field.add(name="service", number=1, type=9, label=1)
    rq.field.add(name="method", number=2, type=9, label=1)
    rq.field.add(name="payload", number=3, type=12, label=1)
    rq.field.add(name="timeout_nano", number=4, type=3, label=1)
    rq.field.add(name="metadata", number=5, type=11, label=3, type_name=".ttrpc.KeyValue")
    rs = f.message_type.add(name="Response")
    rs.field.add(name="status", number=1, type=11, label=1, type_name=".ttrpc.Status")
    rs.field.add(name="payload", number=2, type=12, label=1)
    pool.Add(f)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("ttrpc.Request")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("ttrpc.Response")),
    )
