"""Promises: results that arrive later, and a cache that deduplicates them by key.

A :class:`Promise` is resolved or rejected exactly once and awaited any number of
times, from any task, on asyncio or trio. :class:`PromiseCache` hands out one promise
per key (the CIPD host's "one check per pin") and can drop resolved entries or reject
every pending one at once (a plugin going away).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

import anyio

from .errors import PlugwireError

__all__ = ["Promise", "PromiseCache", "PromiseStateError"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

_PENDING = object()


class PromiseStateError(PlugwireError, RuntimeError):
    """A promise was resolved twice, or read before it was settled."""


class Promise(Generic[T]):
    """A value of type ``T`` (or an exception) that arrives later.

    Create it inside a running event loop (it owns an :class:`anyio.Event`).
    """

    __slots__ = ("_error", "_event", "_value", "label")

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._event = anyio.Event()
        self._value: object = _PENDING
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        """True once resolved or rejected."""
        return self._event.is_set()

    @property
    def rejected(self) -> bool:
        return self._error is not None

    def resolve(self, value: T) -> None:
        """Settle with ``value``. Raises :class:`PromiseStateError` if already settled."""
        self._settle(value, None)

    def reject(self, error: BaseException) -> None:
        """Settle with ``error``; every waiter raises it."""
        self._settle(_PENDING, error)

    def try_resolve(self, value: T) -> bool:
        """Resolve unless already settled; return whether this call settled it."""
        if self.done:
            return False
        self.resolve(value)
        return True

    def try_reject(self, error: BaseException) -> bool:
        """Reject unless already settled; return whether this call settled it."""
        if self.done:
            return False
        self.reject(error)
        return True

    def _settle(self, value: object, error: BaseException | None) -> None:
        if self.done:
            raise PromiseStateError(f"promise {self.label!r} is already settled", step="resolve")
        self._value = value
        self._error = error
        self._event.set()

    async def wait(self) -> T:
        """Wait until settled; return the value or raise the rejection error."""
        await self._event.wait()
        return self.result()

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.wait().__await__()

    def result(self) -> T:
        """The value now; raises the rejection, or :class:`PromiseStateError` if pending."""
        if not self.done:
            raise PromiseStateError(f"promise {self.label!r} is still pending", step="result")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "pending" if not self.done else ("rejected" if self._error else "resolved")
        return f"<Promise {self.label!r} {state}>"


class PromiseCache(Generic[K, T]):
    """One :class:`Promise` per key.

    ``get_or_create`` returns the existing promise for a key, pending or settled, so
    concurrent asks for the same key share one result. Resolved entries stay until
    :meth:`clear_resolved`.
    """

    def __init__(self) -> None:
        self._promises: dict[K, Promise[T]] = {}

    def get_or_create(self, key: K, *, label: Callable[[K], str] = repr) -> tuple[Promise[T], bool]:
        """The promise for ``key`` and whether this call created it."""
        promise = self._promises.get(key)
        if promise is not None:
            return promise, False
        promise = Promise(label(key))
        self._promises[key] = promise
        return promise, True

    def get(self, key: K) -> Promise[T] | None:
        return self._promises.get(key)

    def pop(self, key: K) -> Promise[T] | None:
        return self._promises.pop(key, None)

    def clear_resolved(self) -> int:
        """Drop every settled promise (resolved or rejected); return how many went."""
        settled = [k for k, p in self._promises.items() if p.done]
        for key in settled:
            del self._promises[key]
        return len(settled)

    def reject_pending(self, error: BaseException) -> int:
        """Reject every pending promise with ``error``; return how many were rejected."""
        count = 0
        for promise in self._promises.values():
            if promise.try_reject(error):
                count += 1
        return count

    def pending(self) -> list[K]:
        """Keys whose promise is not settled yet."""
        return [k for k, p in self._promises.items() if not p.done]

    def __len__(self) -> int:
        return len(self._promises)

    def __contains__(self, key: object) -> bool:
        return key in self._promises

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._promises))
