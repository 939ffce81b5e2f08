"""Serving a grpc.aio server and opening channels, with or without TLS.

Plaintext goes straight through grpc.aio. With TLS, grpc.aio stays plaintext on a
private socket and :mod:`._tlsproxy` does the TLS (see there for why).
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from plugwire.core.address import Address

from ._listen import (
    CHANNEL_OPTIONS,
    ListenConfig,
    add_port,
    channel_target,
    fix_socket_mode,
    remove_socket,
)
from ._tlsproxy import PrivateLeg, TLSOriginator, TLSTerminator, private_socket_path
from .mtls import TLSConfig

__all__ = ["Listening", "open_channel", "start_server"]


class Listening:
    """A started server's public address; :meth:`aclose` removes what was set up for it."""

    def __init__(
        self,
        address: Address,
        terminator: TLSTerminator | None = None,
        private_dir: str | None = None,
    ) -> None:
        self.address = address
        self._terminator = terminator
        self._dir = private_dir

    async def aclose(self) -> None:
        if self._terminator is not None:
            await self._terminator.aclose()
            self._terminator = None
        self.remove_files()

    def remove_files(self) -> None:
        """Remove the socket file and the private directory, and nothing else (a
        process about to exit leaves its listeners and connections to the exit)."""
        remove_socket(self.address)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


async def start_server(
    server: grpc.aio.Server,
    *,
    network: str,
    listen: ListenConfig,
    tls: TLSConfig | None,
) -> Listening:
    """Bind and start ``server`` as go-plugin would; TLS through a terminator."""
    if tls is None:
        address = add_port(server, network=network, listen=listen)
        await server.start()
        fix_socket_mode(address, listen)
        return Listening(address)
    private_dir, inner = private_socket_path("plugwire-srv", listen.socket_dir)
    leg = PrivateLeg.generate()
    server.add_secure_port(f"unix:{inner}", leg.server_credentials())
    await server.start()
    terminator = TLSTerminator(tls.server_context(), inner, leg)
    try:
        address = await terminator.listen(network, listen)
    except BaseException:
        await terminator.aclose()
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    fix_socket_mode(address, listen)
    return Listening(address, terminator, private_dir)


class _ClosingChannel(grpc.aio.Channel):
    """A channel that also runs ``cleanups`` (in order, once) when closed: the TLS
    originator, a yamux dial bridge."""

    def __init__(
        self, inner: grpc.aio.Channel, cleanups: Sequence[Callable[[], Awaitable[None]]]
    ) -> None:
        self._inner = inner
        self._cleanups = list(cleanups)

    async def __aenter__(self) -> _ClosingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)
        cleanups, self._cleanups = self._cleanups, []
        for cleanup in cleanups:
            await cleanup()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_stream(method, *args, **kwargs)


async def open_channel(
    address: Address,
    tls: TLSConfig | None,
    *,
    options: Sequence[tuple[str, Any]] = (),
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> grpc.aio.Channel:
    """A grpc.aio channel to ``address`` (TLS through an originator when ``tls``);
    ``on_close`` is awaited after the channel is closed."""
    opts = [*CHANNEL_OPTIONS, *options]
    cleanups: list[Callable[[], Awaitable[None]]] = []
    if tls is None:
        inner = grpc.aio.insecure_channel(channel_target(address), options=opts)
    else:
        originator = TLSOriginator(tls.client_context(), address, tls.server_name)
        path = await originator.start()
        inner = grpc.aio.insecure_channel(f"unix:{path}", options=opts)
        cleanups.append(originator.aclose)
    if on_close is not None:
        cleanups.append(on_close)
    return _ClosingChannel(inner, cleanups) if cleanups else inner
