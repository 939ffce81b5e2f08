"""A plugin SIGKILLed with 64 calls in flight, for every family: each pending call
fails with a typed plugwire error within 1 s, and the same host then launches the
family's plugin again and serves a call.

The plugins are the families' bundled examples, launched by the cross-family
suite's launchers (tests/e2e/test_crossfamily.py). The plugin is SIGSTOPped first,
so all 64 calls are surely pending when SIGKILL arrives.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import anyio
import pytest
from e2e.test_crossfamily import FAMILIES, Call, launched

from plugwire.core import Host
from plugwire.core.errors import PlugwireError

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.goplugin,
    pytest.mark.cipd,
    pytest.mark.nri,
    pytest.mark.drp,
    pytest.mark.tasks,
]

IN_FLIGHT = 64


def _pending_call(family: str, handle: object, call: Call, i: int) -> Call:
    """The call to keep in flight. CIPD caches a pin's decision, so each call asks
    about a pin of its own; the other families repeat their launcher's call."""
    if family != "cipd":
        return call
    from plugwire.grpc.cipd import Pin
    from plugwire.grpc.cipd.pins import HashAlgo, ObjectRef

    pin = Pin(f"infra/tools/p{i}", ObjectRef(HashAlgo.SHA256, f"{i:064x}").instance_id)

    async def check() -> object:
        return await handle.check(pin, timeout=30)  # type: ignore[attr-defined]

    return check


def _nri_proceeded_without_the_plugin(exc: BaseException | None) -> bool:
    """NRI's documented fallback (as upstream): a request the dead plugin cannot
    answer proceeds without its adjustment (the launcher's call then finds no
    ``ADJUSTED_BY``), and the runtime drops the plugin."""
    return isinstance(exc, AssertionError) and "ADJUSTED_BY" in str(exc)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio (go-plugin, CIPD, tasks) runs on asyncio only


@pytest.mark.parametrize("family", sorted(FAMILIES))
async def test_sigkill_with_64_calls_in_flight_fails_each_typed_within_1s(
    family: str, tmp_path: Path
) -> None:
    outcomes: list[tuple[float, BaseException | None]] = []
    async with Host("fault", close_timeout=10) as host:
        first = tmp_path / "first"
        first.mkdir()
        async with launched(host, first, {family: FAMILIES[family]}) as plugins:
            [(handle, call)] = plugins.values()
            await call()  # it works
            process = handle.process
            assert process is not None
            process.signal_group(signal.SIGSTOP)
            killed_at = [float("inf")]

            async def one(i: int) -> None:
                pending = _pending_call(family, handle, call, i)
                try:
                    with anyio.fail_after(15):
                        await pending()
                except Exception as exc:
                    outcomes.append((time.monotonic() - killed_at[0], exc))
                else:
                    outcomes.append((time.monotonic() - killed_at[0], None))

            async with anyio.create_task_group() as tg:
                for i in range(IN_FLIGHT):
                    tg.start_soon(one, i)
                await anyio.sleep(0.5)  # every call is sent and waiting
                killed_at[0] = time.monotonic()
                process.signal_group(signal.SIGKILL)
            assert not process.running
            with contextlib.suppress(PlugwireError):
                await host.close(handle)
        # the host serves the next launch
        second = tmp_path / "second"
        second.mkdir()
        async with launched(host, second, {family: FAMILIES[family]}) as again:
            [(handle2, call2)] = again.values()
            await call2()
            assert handle2.process is not None and handle2.process.running
    assert len(outcomes) == IN_FLIGHT
    early = [e for t, e in outcomes if t < 0]
    assert not early, f"{len(early)} calls ended before the kill: {early[:3]}"
    if family == "nri":
        odd = [repr(e) for _, e in outcomes if not _nri_proceeded_without_the_plugin(e)]
        assert not odd, f"{len(odd)} requests did not proceed without the plugin: {odd[:3]}"
        untyped = []
    else:
        untyped = [repr(e) for _, e in outcomes if not isinstance(e, PlugwireError)]
    assert not untyped, f"{len(untyped)} calls did not fail typed: {sorted(set(untyped))[:3]}"
    slowest = max(t for t, _ in outcomes)
    print(f"FIGURE inflight {family}: {IN_FLIGHT} failed typed, slowest {slowest:.3f} s")
    assert slowest < 1.0, f"slowest pending call failed {slowest:.2f} s after SIGKILL"
