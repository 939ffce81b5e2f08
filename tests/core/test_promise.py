from __future__ import annotations

import anyio
import pytest

from plugwire.core import Promise, PromiseCache, PromiseStateError

pytestmark = pytest.mark.anyio


async def test_resolve_once_await_many() -> None:
    promise: Promise[int] = Promise("x")
    results: list[int] = []

    async def waiter() -> None:
        results.append(await promise)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(waiter)
        await anyio.sleep(0.01)
        assert not promise.done
        promise.resolve(42)
    assert results == [42] * 5
    assert promise.result() == 42
    assert await promise.wait() == 42
    with pytest.raises(PromiseStateError):
        promise.resolve(1)
    assert not promise.try_resolve(2)


async def test_reject_raises_in_every_waiter() -> None:
    promise: Promise[int] = Promise("x")
    promise.reject(ValueError("boom"))
    for _ in range(2):
        with pytest.raises(ValueError, match="boom"):
            await promise
    assert promise.rejected


async def test_result_while_pending_is_an_error() -> None:
    with pytest.raises(PromiseStateError, match="pending"):
        Promise[int]("p").result()


async def test_cache_deduplicates_and_clears_resolved() -> None:
    cache: PromiseCache[str, bool] = PromiseCache()
    first, created = cache.get_or_create("pin-a")
    assert created
    again, created_again = cache.get_or_create("pin-a")
    assert again is first and not created_again
    other, _ = cache.get_or_create("pin-b")
    first.resolve(True)
    # a resolved promise is still handed out until cleared
    assert cache.get_or_create("pin-a") == (first, False)
    assert cache.pending() == ["pin-b"]
    assert cache.clear_resolved() == 1
    assert "pin-a" not in cache and "pin-b" in cache
    fresh, created = cache.get_or_create("pin-a")
    assert created and fresh is not first
    assert len(cache) == 2
    assert other is cache.get("pin-b")


async def test_cache_rejects_all_pending() -> None:
    cache: PromiseCache[int, str] = PromiseCache()
    done, _ = cache.get_or_create(1)
    done.resolve("ok")
    pending = [cache.get_or_create(i)[0] for i in range(2, 6)]
    assert cache.reject_pending(RuntimeError("plugin is terminating")) == 4
    for promise in pending:
        with pytest.raises(RuntimeError, match="terminating"):
            await promise
    assert await done == "ok"
