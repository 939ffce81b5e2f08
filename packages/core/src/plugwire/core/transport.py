"""The transport interface and the ``plugwire.transports`` entry-point registry.

A transport moves opaque request bytes to a named method on a peer and brings the
reply bytes back. Protocol families (go-plugin, NRI, dr-provision, ...) are built on
a transport's richer native API; this common, byte-level surface is what lets the
core, the CLI and the cross-transport tests treat every wire alike.

Core imports no transport: transports are found through the ``plugwire.transports``
entry-point group, so installing ``plugwire[ttrpc]`` adds the ``ttrpc`` transport.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Literal

import attrs

from .errors import ConfigError, RemoteError, TransportNotAvailableError
from .status import StatusCode

if TYPE_CHECKING:
    from importlib import metadata

__all__ = [
    "Address",
    "Channel",
    "InProcessTransport",
    "Transport",
    "UnaryHandler",
    "available_transports",
    "load_transport",
]

ENTRY_POINT_GROUP = "plugwire.transports"

#: A server-side handler: ``(request bytes, metadata) -> reply bytes``. Raise
#: :class:`~plugwire.core.errors.RemoteError` to answer with a status code.
UnaryHandler = Callable[[bytes, Mapping[str, str]], Awaitable[bytes]]


def _check_network(_inst: object, _attr: object, value: str) -> None:
    if value not in ("unix", "tcp", "inproc"):
        raise ConfigError(
            "unknown network", step="address", expected="unix, tcp or inproc", seen=value
        )


@attrs.frozen
class Address:
    """Where a peer listens.

    ``Address("unix", "/run/p.sock")`` or ``Address("tcp", "127.0.0.1:1234")``.
    """

    network: Literal["unix", "tcp", "inproc"] = attrs.field(validator=_check_network)
    address: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``unix:/path``, ``tcp:host:port``, ``inproc:name`` or a bare ``host:port``."""
        network, sep, rest = text.partition(":")
        if sep and network in ("unix", "tcp", "inproc"):
            return cls(network, rest)  # type: ignore[arg-type]
        if text.startswith("/"):
            return cls("unix", text)
        host, sep, port = text.rpartition(":")
        if sep and host and port.isdigit():
            return cls("tcp", text)
        raise ConfigError(
            "cannot parse address",
            step="address",
            expected="unix:/path, tcp:host:port or host:port",
            seen=text,
        )

    def __str__(self) -> str:
        return f"{self.network}:{self.address}"


class Channel(abc.ABC):
    """A client connection able to make unary calls by full method name."""

    @abc.abstractmethod
    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        """Call ``method`` (``/pkg.Service/Method``) and return the reply bytes.

        Raises :class:`RemoteError` when the peer answers with an error status and
        :class:`~plugwire.core.errors.ConnectionClosedError` when the connection fails.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection; pending calls fail."""

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Transport(abc.ABC):
    """A wire: serves handlers at an address and connects channels to one."""

    #: The entry-point name (``grpc``, ``ttrpc``, ``http``, ``inproc``).
    name: ClassVar[str]
    #: anyio backends the transport runs on.
    backends: ClassVar[frozenset[str]] = frozenset({"asyncio", "trio"})

    @abc.abstractmethod
    def serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        """Serve ``handlers`` (keyed by full method name) at ``address``.

        An async context manager yielding the bound address (port 0 and the like
        resolved); leaving it stops the server.
        """

    @abc.abstractmethod
    async def connect(self, address: Address) -> Channel:
        """Open a channel to a server at ``address``."""


class _InProcessChannel(Channel):
    def __init__(self, handlers: Mapping[str, UnaryHandler], peer: str) -> None:
        self._handlers = handlers
        self._peer = peer
        self._closed = False

    async def unary(
        self,
        method: str,
        payload: bytes,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        import anyio

        from .errors import ConnectionClosedError

        if self._closed:
            raise ConnectionClosedError("channel is closed", peer=self._peer, step=method)
        handler = self._handlers.get(method)
        if handler is None:
            raise RemoteError(
                f"method {method} not found", code=StatusCode.UNIMPLEMENTED, peer=self._peer
            )
        with anyio.fail_after(timeout):
            return await handler(payload, dict(metadata or {}))

    async def aclose(self) -> None:
        self._closed = True


class InProcessTransport(Transport):
    """A transport inside one process: handy for tests and for in-process plugins."""

    name = "inproc"
    _servers: ClassVar[dict[str, Mapping[str, UnaryHandler]]] = {}

    @contextlib.asynccontextmanager
    async def _serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> AsyncIterator[Address]:
        if address.address in self._servers:
            raise ConfigError("address in use", step="serve", seen=str(address))
        self._servers[address.address] = dict(handlers)
        try:
            yield address
        finally:
            del self._servers[address.address]

    def serve(
        self, address: Address, handlers: Mapping[str, UnaryHandler]
    ) -> contextlib.AbstractAsyncContextManager[Address]:
        return self._serve(address, handlers)

    async def connect(self, address: Address) -> Channel:
        from .errors import ConnectionClosedError

        handlers = self._servers.get(address.address)
        if handlers is None:
            raise ConnectionClosedError("nothing listens there", step="connect", seen=str(address))
        return _InProcessChannel(handlers, str(address))


def available_transports() -> dict[str, metadata.EntryPoint]:
    """The installed transports by name, from the ``plugwire.transports`` entry points."""
    from importlib import metadata  # ~50 ms: only when transports are looked up

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_transport(name: str) -> Transport:
    """Instantiate the transport registered as ``name``.

    Raises :class:`TransportNotAvailableError` naming the extra to install when it
    is not installed.
    """
    eps = available_transports()
    if name not in eps:
        raise TransportNotAvailableError(
            f"transport {name!r} is not installed; install it with: pip install 'plugwire[{name}]'",
            expected=f"one of {sorted(eps)}",
            seen=name,
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise TransportNotAvailableError(
            f"entry point {name!r} does not name a Transport subclass", seen=repr(cls)
        )
    return cls()
