"""``plugwire check ttrpc``: does the server at this address speak containerd/ttrpc?

Unlike the other families a ttrpc server is not launched by its client: the checker
dials an address that is already served (``unix:/run/x.sock`` or ``host:port``) and
speaks raw frames, so every reply is shown as it arrived. It checks:

- **socket**: (unix) the path is a socket; its owner, its mode and its directory's are
  shown; a socket any user may connect to (world-writable, in a directory others can
  enter) fails;
- **connect**: the address accepts a connection;
- **unknown method**: a request (stream 1) for a service and method nobody serves is
  answered with one ``response`` frame on stream 1 whose ``google.rpc.Status`` is
  UNIMPLEMENTED or NOT_FOUND (what containerd/ttrpc answers) — not a closed
  connection, not garbage (the bytes received are the evidence);
- **service NAME** (``--service``, repeatable): a request for an unknown method of
  that service is refused as an unknown *method*, not as an unknown *service*
  (containerd/ttrpc says ``service X`` / ``method Y``), so the service is served;
- **health**: ``grpc.health.v1.Health/Check`` on the same connection (which must have
  stayed open): SERVING passes, another status fails, UNIMPLEMENTED skips (not served).

ttrpc has no reflection: the services listed are the ones confirmed above.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence

import anyio
import anyio.abc
import click

from plugwire.core.check import CheckReport, finish
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address

from ._envelope import EnvelopeError, decode_response, encode_request
from ._frame import TYPE_NAMES, TYPE_REQUEST, TYPE_RESPONSE, Frame, FrameDecoder, encode_frame
from ._sockets import connect

__all__ = ["TtrpcCheck", "check_command"]

HEALTH = "grpc.health.v1.Health"
NO_SERVICE = "plugwire.check.NoSuchService"
NO_METHOD = "PlugwireCheckNoSuchMethod"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
REFUSED = (StatusCode.UNIMPLEMENTED, StatusCode.NOT_FOUND)


def _code(code: int) -> str:
    try:
        return StatusCode(code).name
    except ValueError:
        return f"code {code}"


def _hex(data: bytes, limit: int = 48) -> str:
    shown = data[:limit]
    text = repr(shown)[2:-1]
    return f"{len(data)} bytes {text}" + ("..." if len(data) > limit else "")


def _health_status(payload: bytes) -> int:
    """``HealthCheckResponse.status`` (field 1, varint) without the health proto."""
    pos = 0
    while pos < len(payload):
        key = payload[pos]
        pos += 1
        if key == 0x08:
            value = shift = 0
            while pos < len(payload):
                b = payload[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    return value
            break
        break
    return 0


class _Exchange(Exception):
    """No proper response frame: ``evidence`` says what came instead."""

    def __init__(self, evidence: str) -> None:
        super().__init__(evidence)
        self.evidence = evidence


class _Wire:
    """One raw ttrpc connection: send a request frame, read the frame answering it."""

    def __init__(self, stream: anyio.abc.ByteStream, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []
        self.received = b""
        self.closed = False

    async def call(self, sid: int, service: str, method: str, payload: bytes = b"") -> Frame:
        if self.closed:
            raise _Exchange("the connection was already closed by the server")
        body = encode_request(service, method, payload, int(self.timeout * 1e9))
        try:
            await self.stream.send(encode_frame(sid, TYPE_REQUEST, 0, body))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.closed = True
            raise _Exchange(f"sending the request failed: {exc!r}") from None
        self.received = b""
        with anyio.move_on_after(self.timeout):
            while not self.frames:
                try:
                    data = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    self.closed = True
                    seen = _hex(self.received) if self.received else "no bytes"
                    raise _Exchange(f"connection closed after {seen}") from None
                self.received += data
                self.frames.extend(self.decoder.feed(data))
            return self.frames.pop(0)
        seen = _hex(self.received) if self.received else "no bytes"
        raise _Exchange(f"no complete frame within {self.timeout} s; received {seen}")


def _status_of(frame: Frame, sid: int, raw: bytes) -> tuple[int, str, bytes]:
    """(code, message, payload) of a response frame answering stream ``sid``."""
    header = f"frame stream {frame.stream_id} type {frame.type} flags {frame.flags:#x}"
    if frame.oversized:
        raise _Exchange(f"{header} announcing {frame.oversized} bytes; received {_hex(raw)}")
    if frame.type != TYPE_RESPONSE:
        kind = TYPE_NAMES.get(frame.type, "unknown")
        raise _Exchange(f"{header} ({kind}), expected a response; received {_hex(raw)}")
    if frame.stream_id != sid:
        raise _Exchange(f"{header}: response on stream {frame.stream_id}, asked on {sid}")
    try:
        status, payload = decode_response(frame.data)
    except EnvelopeError as exc:
        raise _Exchange(f"{header}: malformed ttrpc.Response ({exc}): {_hex(frame.data)}") from None
    return status.code, status.message, payload


class TtrpcCheck:
    """One run of the ttrpc checker (see the module docstring)."""

    def __init__(self, address: str, *, services: Sequence[str] = (), timeout: float = 5.0) -> None:
        self.address = Address.parse(address)
        self.services = list(services)
        self.timeout = timeout
        self.report = CheckReport("ttrpc", str(self.address))

    async def run(self) -> CheckReport:
        r = self.report
        if self.address.network == "unix":
            self._socket(self.address.address)
        async with r.step("connect") as step:
            t0 = time.monotonic()
            with anyio.fail_after(self.timeout):
                stream = await connect(self.address)
            step.detail = f"connected in {(time.monotonic() - t0) * 1000:.0f} ms"
        if r.failed("connect"):
            r.skip("unknown method", "not connected")
            return r
        try:
            wire = _Wire(stream, self.timeout)
            await self._unknown(wire)
            sid = 3
            for service in self.services:
                await self._service(wire, sid, service)
                sid += 2
            await self._health(wire, sid)
        finally:
            await stream.aclose()
        return r

    def _socket(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            self.report.add("socket", False, "no socket", f"{path}: {exc.strerror}")
            return
        mode = stat.S_IMODE(st.st_mode)
        parent = os.path.dirname(os.path.abspath(path))
        dir_st = os.stat(parent)
        dir_mode = stat.S_IMODE(dir_st.st_mode)
        detail = f"uid {st.st_uid} mode {mode:o}; directory uid {dir_st.st_uid} mode {dir_mode:o}"
        self.report.facts["socket"] = path
        if not stat.S_ISSOCK(st.st_mode):
            self.report.add("socket", False, "not a socket", f"{path}: mode {st.st_mode:o}")
        elif mode & 0o002 and dir_mode & 0o001:
            self.report.add(
                "socket",
                False,
                "any user may connect",
                f"{detail}: the socket is world-writable in a directory others can enter",
            )
        else:
            self.report.add("socket", True, detail)

    async def _unknown(self, wire: _Wire) -> None:
        async with self.report.step("unknown method") as step:
            try:
                frame = await wire.call(1, NO_SERVICE, NO_METHOD)
                code, message, _ = _status_of(frame, 1, wire.received)
            except _Exchange as exc:
                step.fail("no ttrpc status for an unknown method", exc.evidence)
                return
            seen = f"stream 1 response: {_code(code)} {message!r}"
            if code in REFUSED:
                step.detail = seen
            else:
                step.fail("unknown method not refused as UNIMPLEMENTED/NOT_FOUND", seen)

    async def _service(self, wire: _Wire, sid: int, service: str) -> None:
        async with self.report.step(f"service {service}") as step:
            try:
                frame = await wire.call(sid, service, NO_METHOD)
                code, message, _ = _status_of(frame, sid, wire.received)
            except _Exchange as exc:
                step.fail("no ttrpc status", exc.evidence)
                return
            seen = f"{NO_METHOD}: {_code(code)} {message!r}"
            if code in REFUSED and message.startswith("service"):
                step.fail("service not served", seen)
            elif code in REFUSED:
                step.detail = f"served ({seen})"
                self.report.services.append(service)
            else:
                step.fail("an unknown method was not refused", seen)

    async def _health(self, wire: _Wire, sid: int) -> None:
        r = self.report
        async with r.step("health") as step:
            try:
                frame = await wire.call(sid, HEALTH, "Check")
                code, message, payload = _status_of(frame, sid, wire.received)
            except _Exchange as exc:
                step.fail("no reply on the same connection", exc.evidence)
                return
            if code in REFUSED:
                step.skip(f"{HEALTH} not served ({_code(code)} {message!r})")
                return
            if code:
                step.fail("Health/Check failed", f"{_code(code)} {message!r}")
                return
            serving = _health_status(payload)
            name = SERVING_STATUS.get(serving, str(serving))
            step.detail = f"Health/Check: {name}"
            r.services.append(HEALTH)
            if serving != 1:
                step.fail(f"not serving: {name}", f"HealthCheckResponse {_hex(payload)}")
        r.facts["discovery"] = "ttrpc has no reflection: services confirmed by probing"


@click.command("ttrpc")
@click.option(
    "--address", required=True, help="unix:/path/to.sock or host:port of a running server."
)
@click.option(
    "--service", "services", multiple=True, help="A service that must be served (repeatable)."
)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per exchange.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI).")
def check_command(address: str, services: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Check a running ttrpc server: plugwire check ttrpc --address unix:/run/x.sock"""
    checker = TtrpcCheck(address, services=services, timeout=timeout)
    finish(anyio.run(checker.run), as_json=as_json)
