"""Wire negotiation inside the go-plugin handshake: ttrpc between plugwire peers.

A plugwire host offers extra wires in the plugin's environment, a variable Go plugins
never read::

    PLUGWIRE_WIRES=ttrpc,grpc

A plugwire plugin that reads the offer, can serve every plugin of the negotiated set
over ttrpc, runs without TLS and without broker multiplexing, on a unix socket,
answers ``ttrpc`` in the announce line's protocol field
(``1|1|unix|/tmp/plugin-dir.../plugin123|ttrpc|``) and serves on that socket, over
ttrpc: the dispensed services, ``grpc.health.v1.Health/Check``,
``plugin.GRPCController/Shutdown``, ``plugin.GRPCStdio/StreamStdio`` and the
``plugin.GRPCBroker/StartStream`` control stream. Connections the broker makes
(``broker.accept``/``broker.dial``) stay gRPC, on sockets of their own, as in
go-plugin. Any other case answers ``grpc`` and serves plain go-plugin; Go hosts never
send the offer, Go plugins never answer anything but ``grpc``.

The host checks the answer: it must be a wire name (else :class:`NegotiationError`),
one it offered (else :class:`~.errors.UnsupportedProtocolError`), and the endpoint
must speak it (a health check over the chosen wire; else :class:`WireMismatchError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from plugwire.core.errors import ConnectionClosedError, PlugwireError

from .._generated.plugin import grpc_broker_pb2, grpc_controller_pb2, grpc_stdio_pb2
from .broker import GrpcBroker
from .errors import NegotiationError, WireMismatchError
from .health import GRPC_SERVICE_NAME
from .stdio import STDERR, STDOUT, BytesWriter

if TYPE_CHECKING:
    from plugwire.ttrpc import Client as TtrpcClient
    from plugwire.ttrpc import Server as TtrpcServer

    from .config import ClientConfig

__all__ = [
    "GRPC",
    "KNOWN_WIRES",
    "TTRPC",
    "WIRES_ENV",
    "NegotiationError",
    "WireMismatchError",
    "parse_wire",
    "parse_wires",
    "ttrpc_available",
]

_log = logging.getLogger("plugwire.grpc.goplugin.wires")

#: The environment variable a plugwire host offers wires in (Go plugins ignore it).
WIRES_ENV = "PLUGWIRE_WIRES"
GRPC = "grpc"
TTRPC = "ttrpc"
#: The wires this implementation can speak, preferred first.
KNOWN_WIRES = (TTRPC, GRPC)

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
BROKER_SERVICE = grpc_broker_pb2.DESCRIPTOR.services_by_name["GRPCBroker"]
CONTROLLER = grpc_controller_pb2.DESCRIPTOR.services_by_name["GRPCController"]
STDIO = grpc_stdio_pb2.DESCRIPTOR.services_by_name["GRPCStdio"]


def ttrpc_available() -> bool:
    """Whether ``plugwire.ttrpc`` (the ``plugwire-ttrpc`` package) is installed."""
    try:
        import plugwire.ttrpc  # noqa: F401
    except ImportError:
        return False
    return True


def parse_wire(value: str, *, peer: str | None, step: str) -> str:
    """One wire name (``grpc``, ``ttrpc``, or one this side does not know yet).

    Raises :class:`NegotiationError` when ``value`` is not a wire name at all.
    """
    if not _NAME.fullmatch(value):
        raise NegotiationError(
            "the wire name does not parse",
            peer=peer,
            step=step,
            expected="a wire name: lower-case letters, digits, '_', '.', '-' (e.g. grpc, ttrpc)",
            seen=value if value else "(empty)",
        )
    return value


def parse_wires(value: str, *, peer: str | None = None, step: str = WIRES_ENV) -> tuple[str, ...]:
    """A ``PLUGWIRE_WIRES`` value: comma-separated wire names, preferred first.

    Unknown but well-formed names are kept (a newer host may offer wires this side
    does not speak); raises :class:`NegotiationError` for anything else.
    """
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or any(not p for p in parts):
        raise NegotiationError(
            "the wire offer does not parse",
            peer=peer,
            step=step,
            expected="comma-separated wire names, e.g. ttrpc,grpc",
            seen=value if value else "(empty)",
        )
    return tuple(parse_wire(p, peer=peer, step=step) for p in parts)


# -- plugin side ---------------------------------------------------------------


class HealthServicer:
    """``grpc.health.v1.Health/Check`` over ttrpc: ``plugin`` and ``""`` are SERVING."""

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> health_pb2.HealthCheckResponse:
        from plugwire.core.errors import RemoteError
        from plugwire.core.status import StatusCode

        if request.service not in (GRPC_SERVICE_NAME, ""):
            raise RemoteError("unknown service", code=StatusCode.NOT_FOUND)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class _QueueStream:
    """The broker's stream on the plugin's end of a ttrpc ``StartStream``."""

    def __init__(self, requests: Any) -> None:
        self._requests = requests.__aiter__()
        self.out: asyncio.Queue[grpc_broker_pb2.ConnInfo | None] = asyncio.Queue()

    async def send(self, info: grpc_broker_pb2.ConnInfo) -> None:
        await self.out.put(info)

    async def recv(self) -> grpc_broker_pb2.ConnInfo | None:
        try:
            return await self._requests.__anext__()  # type: ignore[no-any-return]
        except (StopAsyncIteration, PlugwireError):
            return None

    def close(self) -> None:
        self.out.put_nowait(None)


class TtrpcBrokerServicer:
    """``plugin.GRPCBroker/StartStream`` over ttrpc: hands the host's stream to the broker."""

    def __init__(self, broker: GrpcBroker) -> None:
        self._broker = broker

    async def StartStream(
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[grpc_broker_pb2.ConnInfo]:
        stream = _QueueStream(request_iterator)
        reader = asyncio.ensure_future(self._broker.run_stream(stream))
        reader.add_done_callback(lambda _t: stream.out.put_nowait(None))
        try:
            while True:
                item = await stream.out.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()


def add_core_services(
    server: TtrpcServer, *, broker: GrpcBroker, controller: object, stdio: object
) -> None:
    """Register health, broker, controller and stdio on a ttrpc server."""
    server.add_servicer(HealthServicer(), HEALTH)
    server.add_servicer(TtrpcBrokerServicer(broker), BROKER_SERVICE)
    server.add_servicer(controller, CONTROLLER)
    server.add_servicer(stdio, STDIO)


# -- host side -----------------------------------------------------------------


class _ClientBrokerStream:
    """The broker's stream on the host's end of a ttrpc ``StartStream``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closing: asyncio.Task[Any] | None = None

    async def send(self, info: grpc_broker_pb2.ConnInfo) -> None:
        await self._stream.send(info)

    async def recv(self) -> grpc_broker_pb2.ConnInfo | None:
        try:
            return await self._stream.recv()  # type: ignore[no-any-return]
        except PlugwireError as exc:
            _log.debug("broker stream ended: %s", exc)
            return None

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._stream.aclose())


class TtrpcConnection:
    """The host's ttrpc connections to a plugin: the core services as calls.

    Two connections to the one socket: ``client`` carries the dispensed services,
    health and Shutdown; ``control`` carries the two long-lived streams (broker,
    stdio). A plugwire ttrpc client reads its connection from whichever call is
    waiting, so an idle stream on the calls' connection would read every reply and
    hand it over, one more task switch per call.
    """

    def __init__(self, client: TtrpcClient, control: TtrpcClient, *, peer: str) -> None:
        from plugwire.ttrpc import ServiceClient

        self.client = client
        self.control = control
        self.peer = peer
        self._health = ServiceClient(client, HEALTH)
        self._controller = ServiceClient(client, CONTROLLER)
        self._broker = ServiceClient(control, BROKER_SERVICE)
        self._stdio = ServiceClient(control, STDIO)

    @classmethod
    async def connect(cls, path: str, *, peer: str, timeout: float) -> TtrpcConnection:
        """Dial the plugin's ttrpc socket and check that it speaks ttrpc.

        Raises :class:`WireMismatchError` when the endpoint answers with something
        that is not ttrpc (a gRPC server's HTTP/2 bytes, garbage, a hang-up).
        """
        from plugwire.core.transport import Address
        from plugwire.ttrpc import Client

        client = await Client.connect(Address("unix", path))
        control: TtrpcClient | None = None
        try:
            control = await Client.connect(Address("unix", path))
            conn = cls(client, control, peer=peer)
            status = await conn.check_health(timeout=timeout)
        except BaseException as exc:
            await client.aclose()
            if control is not None:
                await control.aclose()
            if isinstance(exc, (PlugwireError, TimeoutError)):
                raise WireMismatchError(
                    "the plugin announced ttrpc but its endpoint does not speak ttrpc",
                    peer=peer,
                    step="connect ttrpc",
                    expected="a ttrpc reply to grpc.health.v1.Health/Check",
                    seen=f"{type(exc).__name__}: {exc}",
                ) from exc
            raise
        if status != health_pb2.HealthCheckResponse.SERVING:
            await conn.aclose()
            raise ConnectionClosedError(
                "plugin is not serving", peer=peer, step="connect ttrpc", seen=status
            )
        return conn

    async def check_health(self, *, timeout: float | None) -> int:
        reply = await self._health.Check(
            health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAME), timeout=timeout
        )
        return int(reply.status)

    async def shutdown(self, *, timeout: float | None) -> None:
        await self._controller.Shutdown(grpc_controller_pb2.Empty(), timeout=timeout)

    async def broker_stream(self) -> _ClientBrokerStream:
        return _ClientBrokerStream(await self._broker.StartStream())

    async def run_broker(self, broker: GrpcBroker) -> None:
        try:
            stream = await self.broker_stream()
        except PlugwireError as exc:
            _log.debug("broker stream not opened: %s", exc)
            return
        await broker.run_stream(stream)

    async def pump_stdio(
        self,
        stdout: BytesWriter | None,
        stderr: BytesWriter | None,
        *,
        logger: logging.Logger = _log,
    ) -> None:
        """Copy ``StreamStdio`` to ``stdout``/``stderr`` until it ends (as over gRPC)."""
        try:
            stream = await self._stdio.StreamStdio(empty_pb2.Empty())
        except PlugwireError as exc:
            logger.debug("stdio stream not opened: %s", exc)
            return
        try:
            async for data in stream:
                target = (
                    stdout if data.channel == STDOUT else stderr if data.channel == STDERR else None
                )
                if target is None:
                    if data.channel not in (STDOUT, STDERR):
                        logger.warning("unknown stdio channel %s, dropping", data.channel)
                    continue
                target.write(data.data)
                flush = getattr(target, "flush", None)
                if callable(flush):
                    flush()
        except PlugwireError as exc:
            logger.debug("stdio stream ended: %s", exc)
        finally:
            with contextlib.suppress(BaseException):
                await stream.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.control.aclose()


class MappedStub:
    """A dispensed ttrpc stub whose calls raise plugwire errors like the gRPC path:
    a broken connection of a plugin that exited becomes ``PluginExitedError``."""

    def __init__(self, stub: Any, mapper: Callable[[PlugwireError], Awaitable[PlugwireError]]):
        self._stub = stub
        self._mapper = mapper

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        mapper = self._mapper

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except ConnectionClosedError as exc:
                raise await mapper(exc) from exc

        call.__name__ = name
        setattr(self, name, call)  # later lookups skip __getattr__
        return call


def offered_wires(environ: Mapping[str, str], *, peer: str | None = "host") -> tuple[str, ...]:
    """The plugin's view of the offer: ``()`` without one; a value that does not parse
    is logged (naming the variable, expected and seen) and treated as no offer, so a
    plugin always stays reachable over plain go-plugin gRPC."""
    raw = environ.get(WIRES_ENV)
    if raw is None:
        return ()
    try:
        return parse_wires(raw, peer=peer)
    except NegotiationError as exc:
        _log.warning("ignoring the wire offer: %s", exc)
        return ()


def ttrpc_obstacle(config: ClientConfig) -> str | None:
    """Why this host cannot offer ttrpc (``None``: it can)."""
    if not ttrpc_available():
        return "plugwire-ttrpc is not installed"
    if config.auto_mtls or config.tls is not None:
        return "TLS is configured (auto_mtls/tls): ttrpc runs without TLS"
    if config.multiplex:
        return "broker multiplexing (yamux) is a gRPC feature"
    for version, plugins in config.plugin_sets().items():
        for name, plugin in plugins.items():
            if TTRPC not in plugin.wires:
                return f"plugin {name!r} (version {version}) cannot be dispensed over ttrpc"
    return None


def host_offer(config: ClientConfig, *, peer: str | None) -> tuple[str, ...]:
    """The wires a host offers (and accepts), preferred first.

    ttrpc is dropped when :func:`ttrpc_obstacle` names a reason; raises
    :class:`~plugwire.core.errors.ConfigError` when nothing is left (ttrpc forced
    where it cannot run).
    """
    from plugwire.core.errors import ConfigError

    offer = list(config.wires)
    if TTRPC in offer:
        why = ttrpc_obstacle(config)
        if why is not None:
            offer.remove(TTRPC)
            if not offer:
                raise ConfigError(
                    f"wires=('ttrpc',) forces ttrpc, but {why}",
                    peer=peer,
                    step="negotiate wire",
                    expected="a configuration ttrpc can run with, or 'grpc' in wires",
                    seen=why,
                )
            _log.debug("not offering ttrpc to %s: %s", peer, why)
    return tuple(offer)
