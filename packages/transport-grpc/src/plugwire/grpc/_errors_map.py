"""gRPC failures as plugwire errors, and a channel whose calls raise them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import grpc
from plugwire.core.errors import ClosedError, PlugwireError, RemoteError

__all__ = ["MappedChannel", "rpc_error"]


def rpc_error(
    exc: grpc.aio.AioRpcError, *, peer: str | None = None, step: str | None = None
) -> RemoteError:
    """A :class:`RemoteError` carrying the gRPC status code and message of ``exc``."""
    code = exc.code()
    number = code.value[0] if isinstance(code.value, tuple) else int(code.value)
    return RemoteError(exc.details() or code.name, code=number, peer=peer, step=step)


#: ``(exc, method) -> error to raise``.
ErrorMapper = Callable[[grpc.aio.AioRpcError, str], Awaitable[PlugwireError]]


class _MappedCall:
    """A grpc.aio call of any kind whose failures come out as plugwire errors:
    awaiting it (unary or client-streaming reply), iterating it or :meth:`read`
    (server-streaming replies), :meth:`write` and :meth:`done_writing` (client-streaming
    requests). Everything else (``code()``, ``cancel()``, metadata...) is the call's own.
    """

    def __init__(self, call: Any, method: str, mapper: ErrorMapper) -> None:
        self._call = call
        self._method = method
        self._mapper = mapper
        self._iterator: Any = None

    async def _mapped(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except grpc.aio.AioRpcError as exc:
            raise await self._mapper(exc, self._method) from exc

    def __await__(self) -> Generator[Any, None, Any]:
        return self._mapped(self._call).__await__()

    def __aiter__(self) -> _MappedCall:
        self._iterator = self._call.__aiter__()
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._call.__aiter__()
        return await self._mapped(self._iterator.__anext__())

    async def read(self) -> Any:
        return await self._mapped(self._call.read())

    async def write(self, request: Any) -> None:
        try:
            await self._mapped(self._call.write(request))
        except asyncio.InvalidStateError:
            raise await self._finished() from None

    async def done_writing(self) -> None:
        try:
            await self._mapped(self._call.done_writing())
        except asyncio.InvalidStateError:
            raise await self._finished() from None

    async def _finished(self) -> PlugwireError:
        """The error for writing to a call whose request stream is closed: the call's
        own failure, or :class:`ClosedError` (after ``done_writing`` or a call that
        ended well). Waits for the call to end."""
        code = await self._call.code()
        if code == grpc.StatusCode.OK:
            return ClosedError(
                "the call's request stream is closed",
                step=self._method,
                expected="a write before done_writing() and before the call ended",
            )
        exc = grpc.aio.AioRpcError(
            code,
            await self._call.initial_metadata(),
            await self._call.trailing_metadata(),
            details=await self._call.details(),
            debug_error_string=await self._call.debug_error_string(),
        )
        return await self._mapper(exc, self._method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _MappedMultiCallable:
    def __init__(self, inner: Any, method: str, mapper: ErrorMapper) -> None:
        self._inner = inner
        self._method = method
        self._mapper = mapper

    def __call__(self, *args: Any, **kwargs: Any) -> _MappedCall:
        return _MappedCall(self._inner(*args, **kwargs), self._method, self._mapper)


class MappedChannel(grpc.aio.Channel):
    """Delegates to a channel; calls of every kind raise plugwire errors via ``mapper``.

    Dispensed stubs are built on this channel, so ``await stub.Put(req)``, iterating a
    server stream (``async for reply in stub.Watch(req)``, ``await call.read()``) and
    writing to a client stream raise :class:`~plugwire.core.errors.RemoteError` (or
    :class:`~plugwire.core.errors.PluginExitedError` when the plugin died,
    :class:`~plugwire.core.errors.ConnectionClosedError` when the connection broke)
    instead of ``grpc.aio.AioRpcError``.
    """

    def __init__(self, inner: grpc.aio.Channel, mapper: ErrorMapper) -> None:
        self._inner = inner
        self._mapper = mapper

    async def __aenter__(self) -> MappedChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _MappedMultiCallable(
            self._inner.unary_unary(method, *args, **kwargs), method, self._mapper
        )

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _MappedMultiCallable(
            self._inner.unary_stream(method, *args, **kwargs), method, self._mapper
        )

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _MappedMultiCallable(
            self._inner.stream_unary(method, *args, **kwargs), method, self._mapper
        )

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _MappedMultiCallable(
            self._inner.stream_stream(method, *args, **kwargs), method, self._mapper
        )
