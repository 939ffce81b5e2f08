"""gRPC failures as plugwire errors, and a channel whose unary calls raise them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

import grpc
from plugwire.core.errors import PlugwireError, RemoteError

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
    """Awaitable like a grpc.aio call; failures come out as plugwire errors."""

    def __init__(self, call: Any, method: str, mapper: ErrorMapper) -> None:
        self._call = call
        self._method = method
        self._mapper = mapper

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        try:
            return await self._call
        except grpc.aio.AioRpcError as exc:
            raise await self._mapper(exc, self._method) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _MappedMultiCallable:
    def __init__(self, inner: Any, method: str, mapper: ErrorMapper) -> None:
        self._inner = inner
        self._method = method
        self._mapper = mapper

    def __call__(self, request: Any, **kwargs: Any) -> _MappedCall:
        return _MappedCall(self._inner(request, **kwargs), self._method, self._mapper)


class MappedChannel(grpc.aio.Channel):
    """Delegates to a channel; unary-unary calls raise plugwire errors via ``mapper``.

    Dispensed stubs are built on this channel, so ``await stub.Put(req)`` raises
    :class:`~plugwire.core.errors.RemoteError` (or
    :class:`~plugwire.core.errors.PluginExitedError` when the plugin died) instead of
    ``grpc.aio.AioRpcError``. Streaming calls pass through unchanged.
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
        return self._inner.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_stream(method, *args, **kwargs)
