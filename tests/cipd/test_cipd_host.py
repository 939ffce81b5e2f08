"""The plugwire CIPD host against the plugwire Python plugin (and raw gRPC clients).

Real processes and a real gRPC server on 127.0.0.1 throughout; the raw clients stand
in for misbehaving plugins (no ticket, wrong ticket, a second ListAdmissions, another
protocol version) that no well-behaved plugin library would produce.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import grpc
import grpc.aio
import pytest

from plugwire.core.errors import (
    ClosedError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    RemoteError,
    TransportNotAvailableError,
    VersionMismatchError,
)
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.core.status import StatusCode
from plugwire.grpc.cipd import (
    AdmissionAbortedError,
    AdmissionDeniedError,
    CipdHost,
    MetadataEntry,
    Pin,
    PluginHandshake,
    StaticMetadataSource,
)
from plugwire.grpc.cipd._generated import cipd_admission_pb2, cipd_plugin_pb2, cipd_types_pb2
from plugwire.grpc.cipd._wire import (
    LIST_ADMISSIONS,
    LIST_METADATA,
    LOG,
    RESOLVE_ADMISSION,
    admission_pb,
    status_pb,
)

URL = "https://cipd.example.com"
IID = "a" * 40  # a legacy SHA1 instance ID
MODES = Path(__file__).parent / "plugins" / "modes.py"


def plugin_argv(*args: str) -> list[str]:
    """The command line of plugins/modes.py in a mode."""
    return [sys.executable, str(MODES), *args]


pytestmark = pytest.mark.anyio


def pin(package: str, iid: str = IID) -> Pin:
    return Pin(package, iid)


@pytest.fixture
async def host() -> AsyncIterator[CipdHost]:
    source = StaticMetadataSource(
        {
            pin("meta/yes"): [
                MetadataEntry("allowed", "nope"),
                MetadataEntry("other", IID),
                MetadataEntry("allowed", "nah"),
                MetadataEntry("allowed", IID),
            ],
            pin("meta/no"): [MetadataEntry("allowed", "nope")],
        }
    )
    async with CipdHost(service_url=URL, metadata=source) as h:
        yield h


async def outcome(promise: Any) -> str:
    try:
        await promise.wait()
    except AdmissionDeniedError as exc:
        return f"denied: {exc.message}"
    except RemoteError as exc:
        return f"{StatusCode(exc.code).name}: {exc.message}"
    return "admitted"


# -- decisions ---------------------------------------------------------------------


async def test_decisions_metadata_and_dedup(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    assert plugin.process is None  # lazy: nothing runs before the first check
    pins = [pin("good/a"), pin("bad/a"), pin("meta/yes"), pin("meta/no"), pin("false/a")]
    promises = plugin.prefetch(pins)
    assert plugin.check_admission(pin("good/a")) is promises[0]
    results = [await outcome(p) for p in promises]
    assert results == [
        "admitted",
        "denied: package bad/a is not allowed",
        "admitted",
        'denied: no matching "allowed" metadata among 1 entries',
        "denied: not admitted",
    ]
    assert plugin.plugin_version == "plugwire-test (normal)"
    # Settled promises are cached until clear_cache().
    assert plugin.check_admission(pin("good/a")) is promises[0]
    assert plugin.clear_cache() == len(pins)
    again = plugin.check_admission(pin("good/a"))
    assert again is not promises[0]
    await again.wait()
    assert await plugin.is_admitted(pin("bad/a")) is False
    assert await plugin.is_admitted(pin("good/b")) is True


async def test_handler_exception_is_aborted_and_plugin_keeps_going(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    with pytest.raises(RemoteError) as info:
        await plugin.check(pin("boom/a"))
    assert not isinstance(info.value, AdmissionDeniedError)
    assert info.value.code == StatusCode.ABORTED
    assert "kaboom" in info.value.message
    await plugin.check(pin("good/after-boom"))


async def test_many_concurrent_checks(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    pins = [pin(f"slow/p{i}") for i in range(200)] + [pin(f"bad/p{i}") for i in range(50)]
    promises = plugin.prefetch(pins)
    start = time.monotonic()
    results = [await outcome(p) for p in promises]
    assert results.count("admitted") == 200
    assert sum(r.startswith("denied") for r in results) == 50
    # 200 handlers sleeping 100 ms each (20 s in a row) ran concurrently.
    assert time.monotonic() - start < 10


async def test_plugin_log_goes_to_host_logging(
    host: CipdHost, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = await host.launch(plugin_argv("normal"), name="logger-test")
    with caplog.at_level(logging.DEBUG, logger="plugwire.plugin.logger-test"):
        await plugin.is_admitted(pin("bad/logged"))
        with anyio.fail_after(5):
            while not any("rejecting bad/logged" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await anyio.sleep(0.01)
    record = next(r for r in caplog.records if "rejecting bad/logged" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert record.name == "plugwire.plugin.logger-test"
    assert getattr(record, "severity", None) == "warning"


# -- admission ids -----------------------------------------------------------------


async def spy(host: CipdHost, tmp_path: Path, **kw: Any) -> tuple[Any, PluginHandshake]:
    """Launch the spy plugin via a first check; return (plugin, its handshake)."""
    out = tmp_path / f"handshake-{time.monotonic_ns()}"
    plugin = await host.launch(plugin_argv("spy", str(out)), **kw)
    plugin.check_admission(pin("good/first"))
    with anyio.fail_after(10):
        while not out.exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
    return plugin, PluginHandshake.parse(out.read_bytes())


def expected_id(salt: int, package: str, iid: str = IID) -> str:
    from plugwire.grpc.cipd import instance_id_to_object_ref

    blob = admission_pb("", URL, package, instance_id_to_object_ref(iid)).SerializeToString()
    return (
        base64.b64encode(hashlib.sha256(f"{salt}\n".encode() + blob).digest()).decode().rstrip("=")
    )


async def test_handshake_and_salted_ids_on_the_wire(host: CipdHost, tmp_path: Path) -> None:
    plugin, hs = await spy(host, tmp_path)
    assert hs.port == host.port
    assert plugin.salt == os.getpid()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hs.port}") as channel:
        md = (("x-plugin-ticket", hs.ticket),)
        stream = channel.unary_stream(
            LIST_ADMISSIONS,
            request_serializer=cipd_admission_pb2.ListAdmissionsRequest.SerializeToString,
            response_deserializer=cipd_admission_pb2.Admission.FromString,
        )(
            cipd_admission_pb2.ListAdmissionsRequest(protocol_version=1, plugin_version="raw"),
            metadata=md,
        )
        first = await stream.read()
        assert isinstance(first, cipd_admission_pb2.Admission)
        assert first.package == "good/first"
        assert first.service_url == URL
        assert first.instance.hash_algo == 1 and first.instance.hex_digest == IID
        assert first.admission_id == expected_id(os.getpid(), "good/first")
        assert first.admission_id != expected_id(os.getpid() + 1, "good/first")
        promise = plugin.check_admission(pin("good/first"))
        resolve = channel.unary_unary(
            RESOLVE_ADMISSION,
            request_serializer=cipd_admission_pb2.ResolveAdmissionRequest.SerializeToString,
            response_deserializer=lambda b: b,
        )
        await resolve(
            cipd_admission_pb2.ResolveAdmissionRequest(
                admission_id=first.admission_id, status=status_pb(StatusCode.PERMISSION_DENIED, "x")
            ),
            metadata=md,
        )
        assert await outcome(promise) == "PERMISSION_DENIED: x"
        # Resolving twice, or an unknown id, is ignored (first decision wins).
        for admission_id in (first.admission_id, "unknown"):
            await resolve(
                cipd_admission_pb2.ResolveAdmissionRequest(
                    admission_id=admission_id, status=status_pb(0)
                ),
                metadata=md,
            )
        assert await outcome(promise) == "PERMISSION_DENIED: x"
        stream.cancel()
    await plugin.aclose()


# -- authentication and the Host service ------------------------------------------


async def raw_call(port: int, method: str, request: Any, ticket: str | None) -> bytes:
    md = None if ticket is None else (("x-plugin-ticket", ticket),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        result: bytes = await call(request, metadata=md, timeout=10)
        return result


@pytest.mark.parametrize(
    ("method", "request_msg"),
    [
        (LOG, cipd_plugin_pb2.LogRequest(severity="info", message="hi")),
        (LIST_METADATA, cipd_plugin_pb2.ListMetadataRequest(service_url=URL)),
        (RESOLVE_ADMISSION, cipd_admission_pb2.ResolveAdmissionRequest(admission_id="x")),
    ],
)
async def test_no_ticket_and_wrong_ticket(
    host: CipdHost, tmp_path: Path, method: str, request_msg: Any
) -> None:
    plugin, hs = await spy(host, tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_call(host.port, method, request_msg, None)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "no ticket in the request"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_call(host.port, method, request_msg, hs.ticket[:-2] + "xx")
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "invalid ticket in the request"
    # The host keeps serving: the genuine ticket works.
    await raw_call(host.port, LOG, cipd_plugin_pb2.LogRequest(message="still here"), hs.ticket)
    await plugin.aclose()
    # A closed plugin's ticket is forgotten.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_call(host.port, LOG, cipd_plugin_pb2.LogRequest(), hs.ticket)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_list_metadata_service_url_and_paging(host: CipdHost, tmp_path: Path) -> None:
    plugin, hs = await spy(host, tmp_path)
    p = pin("meta/yes")
    request = cipd_plugin_pb2.ListMetadataRequest(
        service_url=URL, package=p.package, keys=["allowed"], page_size=2
    )
    request.instance.hash_algo = cipd_types_pb2.SHA1
    request.instance.hex_digest = IID
    page = cipd_plugin_pb2.ListMetadataResponse.FromString(
        await raw_call(host.port, LIST_METADATA, request, hs.ticket)
    )
    assert [m.value for m in page.metadata] == [b"nope", b"nah"]
    assert page.next_page_token == "2"
    request.page_token = page.next_page_token
    page = cipd_plugin_pb2.ListMetadataResponse.FromString(
        await raw_call(host.port, LIST_METADATA, request, hs.ticket)
    )
    assert [m.value for m in page.metadata] == [IID.encode()] and not page.next_page_token
    request.page_token = "bogus"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_call(host.port, LIST_METADATA, request, hs.ticket)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request.page_token = ""
    request.service_url = "https://evil.example.com"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_call(host.port, LIST_METADATA, request, hs.ticket)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert URL in (info.value.details() or "")
    await plugin.aclose()


async def test_list_metadata_without_source_is_unimplemented(tmp_path: Path) -> None:
    async with CipdHost(service_url=URL) as bare:
        _, hs = await spy(bare, tmp_path)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw_call(
                bare.port,
                LIST_METADATA,
                cipd_plugin_pb2.ListMetadataRequest(service_url=URL),
                hs.ticket,
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_failing_metadata_source_is_internal(tmp_path: Path) -> None:
    class Broken:
        async def list_metadata(self, query: Any) -> Any:
            raise OSError("backend down")

    async with CipdHost(service_url=URL, metadata=Broken()) as h:
        _, hs = await spy(h, tmp_path)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw_call(
                h.port,
                LIST_METADATA,
                cipd_plugin_pb2.ListMetadataRequest(service_url=URL),
                hs.ticket,
            )
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "backend down" in (info.value.details() or "")


# -- ListAdmissions preconditions --------------------------------------------------


def list_admissions(channel: grpc.aio.Channel, ticket: str, version: int = 1) -> Any:
    return channel.unary_stream(
        LIST_ADMISSIONS,
        request_serializer=cipd_admission_pb2.ListAdmissionsRequest.SerializeToString,
        response_deserializer=cipd_admission_pb2.Admission.FromString,
    )(
        cipd_admission_pb2.ListAdmissionsRequest(protocol_version=version, plugin_version="raw"),
        metadata=(("x-plugin-ticket", ticket),),
    )


async def test_second_list_admissions_is_failed_precondition(
    host: CipdHost, tmp_path: Path
) -> None:
    plugin, hs = await spy(host, tmp_path)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hs.port}") as channel:
        first = list_admissions(channel, hs.ticket)
        assert (await first.read()).package == "good/first"
        second = list_admissions(channel, hs.ticket)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await second.read()
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == "already called ListAdmissions"
        # The first stream still works.
        plugin.check_admission(pin("good/second"))
        assert (await first.read()).package == "good/second"
        first.cancel()
    # The first stream ending aborts every pending and future check.
    with anyio.fail_after(10):
        with pytest.raises(AdmissionAbortedError, match="the admission plugin is terminating"):
            await plugin.check_admission(pin("good/second")).wait()
    with pytest.raises(AdmissionAbortedError):
        await plugin.check_admission(pin("good/third")).wait()


async def test_wrong_protocol_version(host: CipdHost, tmp_path: Path) -> None:
    plugin, hs = await spy(host, tmp_path)
    pending = plugin.check_admission(pin("good/x"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hs.port}") as channel:
        call = list_admissions(channel, hs.ticket, version=2)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "unknown protocol version 2: expecting 1"
    with pytest.raises(VersionMismatchError) as err:
        await pending.wait()
    assert err.value.offered == (2,) and err.value.supported == (1,)
    with pytest.raises(VersionMismatchError):
        await plugin.check_admission(pin("good/later")).wait()
    with anyio.fail_after(10):
        await plugin.aclose()
    assert plugin.process is None


# -- start-up failures -------------------------------------------------------------


async def test_connect_deadline(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("never"), connect_timeout=0.5)
    assert (await host.launch(plugin_argv("never"))).connect_timeout == 30.0
    start = time.monotonic()
    with pytest.raises(PluginTimeoutError, match=r"did not call ListAdmissions within 0\.5 s"):
        await plugin.check(pin("good/x"))
    assert 0.4 < time.monotonic() - start < 8
    with pytest.raises(PluginTimeoutError):
        await plugin.check(pin("good/y"))


async def test_exit_before_connecting_carries_the_exit(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("exit-early"))
    with pytest.raises(PluginStartError) as info:
        await plugin.check(pin("good/x"))
    assert "terminated before making ListAdmissions RPC" in str(info.value)
    assert str(info.value.seen).startswith("exit status 4")
    exited = info.value.__cause__
    assert isinstance(exited, PluginExitedError) and exited.returncode == 4
    assert "giving up before connecting" in exited.stderr_tail


async def test_exit_before_reading_the_handshake(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("die-now"))
    with pytest.raises(PluginStartError) as info:
        await plugin.check(pin("good/x"))
    assert str(info.value.seen).startswith("exit status 5")
    # The host keeps running: another plugin works.
    await (await host.launch(plugin_argv("normal"))).check(pin("good/x"))


async def test_missing_executable(host: CipdHost, tmp_path: Path) -> None:
    plugin = await host.launch([str(tmp_path / "no-such-plugin")])
    with pytest.raises(PluginStartError, match="cannot execute"):
        await plugin.check(pin("good/x"))


async def test_garbage_handshake_makes_the_python_plugin_exit_1() -> None:
    with anyio.fail_after(30):
        proc = await anyio.run_process(
            plugin_argv("normal"), input=b"this is not json\n", check=False
        )
    assert proc.returncode == 1
    assert b"malformed handshake" in proc.stderr
    assert b"step='handshake'" in proc.stderr


# -- crashes, hangs, close, restart ------------------------------------------------


async def test_crash_mid_batch_rejects_pending_and_future(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    await plugin.check(pin("good/before"))
    batch = plugin.prefetch([pin("hang/a"), pin("crash/now"), pin("hang/b")])
    for promise in batch:
        with anyio.fail_after(10), pytest.raises(AdmissionAbortedError) as info:
            await promise.wait()
        assert info.value.process_error is not None
        assert info.value.process_error.returncode == 3
        assert "exit status 3" in str(info.value)
    with pytest.raises(AdmissionAbortedError):
        await plugin.check(pin("good/after"))
    # The earlier, settled decision stays cached.
    await plugin.check_admission(pin("good/before")).wait()


async def test_hanging_handler_times_out_alone_and_close_is_prompt(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    hang = plugin.check_admission(pin("hang/forever"))
    with pytest.raises(PluginTimeoutError, match=r"undecided after 0\.3 s"):
        await plugin.check(pin("hang/forever"), timeout=0.3)
    await plugin.check(pin("good/meanwhile"), timeout=10)
    process = plugin.process
    assert process is not None
    start = time.monotonic()
    await plugin.aclose()
    assert time.monotonic() - start < 4  # stdin EOF stopped it, no SIGKILL needed
    assert process.returncode == 0
    with pytest.raises(AdmissionAbortedError, match="terminating"):
        await hang.wait()


async def test_close_kills_a_plugin_that_ignores_stdin(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("deaf"), shutdown=ShutdownPolicy(grace=0.5))
    await plugin.check(pin("good/x"))
    process = plugin.process
    assert process is not None
    start = time.monotonic()
    await plugin.aclose()
    assert 0.4 < time.monotonic() - start < 5
    assert process.returncode == -9


async def test_close_before_any_check_and_twice(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"))
    await plugin.aclose()
    await plugin.aclose()
    with pytest.raises(AdmissionAbortedError):
        await plugin.check(pin("good/x"))


async def test_restart_option_resends_undecided_checks(host: CipdHost, tmp_path: Path) -> None:
    plugin = await host.launch(plugin_argv("crash-once", str(tmp_path / "crashed")), max_restarts=1)
    results = [
        await outcome(p) for p in plugin.prefetch([pin("good/a"), pin("crash/a"), pin("bad/a")])
    ]
    assert results[1] == "admitted"  # decided by the second process
    assert results[2] == "denied: package bad/a is not allowed"
    assert plugin.restarts == 1
    assert (tmp_path / "crashed").exists()


async def test_restarts_are_bounded(host: CipdHost) -> None:
    plugin = await host.launch(plugin_argv("normal"), max_restarts=1)
    with anyio.fail_after(20), pytest.raises(AdmissionAbortedError):
        await plugin.check(pin("crash/always"))
    assert plugin.restarts == 1


async def test_restart_covers_a_plugin_dying_at_start_up(host: CipdHost, tmp_path: Path) -> None:
    marker = tmp_path / "died"
    # First launch: die-once exits 5 before the handshake; the relaunch works.
    plugin = await host.launch(plugin_argv("die-once", str(marker)), max_restarts=1)
    await plugin.check(pin("good/x"), timeout=30)
    assert plugin.restarts == 1 and marker.exists()
    # Without restarts the start-up death is final; a timeout is never retried.
    marker.unlink()
    once = await host.launch(plugin_argv("die-once", str(marker)))
    with pytest.raises(PluginStartError):
        await once.check(pin("good/x"))
    never = await host.launch(plugin_argv("never"), connect_timeout=0.3, max_restarts=3)
    with pytest.raises(PluginTimeoutError):
        await never.check(pin("good/x"))
    assert never.restarts == 0


async def test_host_close_closes_plugins_in_parallel() -> None:
    # The host's policy applies to every plugin it closes: 0.5 s stdin grace, 0.5 s
    # after SIGTERM (which "deaf" ignores too), SIGKILL.
    policy = ShutdownPolicy(grace=0.5, term_grace=0.5)
    async with CipdHost(service_url=URL, shutdown=policy) as h:
        plugins = [await h.launch(plugin_argv("deaf")) for _ in range(3)]
        exe = os.path.basename(sys.executable)  # default names are made unique
        assert [p.name for p in plugins] == [exe, f"{exe}-2", f"{exe}-3"]
        assert set(h.plugins) == {p.name for p in plugins}
        for p in plugins:
            await p.check(pin("good/x"))
        processes = [p.process for p in plugins]
        start = time.monotonic()
    assert time.monotonic() - start < 3.5  # three 1 s stops, in parallel
    assert [proc.returncode if proc else None for proc in processes] == [-9, -9, -9]
    assert all(p.closed for p in plugins) and not h.plugins
    assert all(p.process is None for p in plugins)
    with pytest.raises(ClosedError):
        await h.launch(plugin_argv("normal"))


def test_trio_is_refused() -> None:
    async def main() -> None:
        async with CipdHost():
            pass

    with pytest.raises(TransportNotAvailableError, match="asyncio"):
        anyio.run(main, backend="trio")
