"""Retry policy: the backoff schedule and which API errors are retried (no cluster needed)."""

from __future__ import annotations

import json
import random

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from plugwire.core.errors import ConfigError
from plugwire.kube import DEFAULT_BACKOFF, Backoff, KubeAPI, KubeAPIError, is_retryable


def api_exception(status: int, reason: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "reason": reason, "code": status})
    return exc


def test_default_backoff_is_intercoms_default_retry() -> None:
    assert (
        DEFAULT_BACKOFF.steps,
        DEFAULT_BACKOFF.duration,
        DEFAULT_BACKOFF.factor,
        DEFAULT_BACKOFF.jitter,
    ) == (
        5,
        0.010,
        1.0,
        0.1,
    )
    delays = list(DEFAULT_BACKOFF.delays(random.Random(1)))
    assert len(delays) == 4
    assert all(0.010 <= d <= 0.011 for d in delays)


def test_backoff_growth_and_cap() -> None:
    b = Backoff(steps=4, duration=1.0, factor=2.0, jitter=0.0, cap=3.0)
    assert list(b.delays()) == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError):
        Backoff(duration=-1)
    with pytest.raises(ValueError):
        Backoff(steps=0)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, "NotFound"),
        (403, "Forbidden"),
        (422, "Invalid"),
        (405, "MethodNotAllowed"),
        (405, "MethodNotSupported"),
        (401, "Unauthorized"),
        (409, "AlreadyExists"),
        (400, "BadRequest"),
    ],
)
def test_final_errors_are_not_retryable(status: int, reason: str) -> None:
    assert not is_retryable(api_exception(status, reason))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (504, "Timeout"),
        (429, "TooManyRequests"),
    ],
)
def test_transient_errors_are_retryable(status: int, reason: str) -> None:
    assert is_retryable(api_exception(status, reason))


def test_transport_errors() -> None:
    assert is_retryable(urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert is_retryable(urllib3.exceptions.ProtocolError("reset"))
    assert is_retryable(ConnectionRefusedError())
    assert is_retryable(TimeoutError())
    assert is_retryable(ApiException(status=0, reason="Connection to remote host was lost."))
    assert not is_retryable(ApiException(status=0, reason="Handshake status 403 Forbidden"))
    assert not is_retryable(ValueError("a bug"))


class _Calls:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.timeouts: list[object] = []

    def __call__(self, *, _request_timeout: object) -> str:
        self.timeouts.append(_request_timeout)
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _api() -> KubeAPI:
    from kubernetes import client

    return KubeAPI(client.ApiClient(), timeout=3.5)


@pytest.mark.anyio
async def test_call_retries_transient_then_succeeds() -> None:
    calls = _Calls([api_exception(503, "ServiceUnavailable"), ConnectionResetError()])
    assert await _api().call("probe", calls) == "ok"
    assert calls.timeouts == [3.5, 3.5, 3.5]


@pytest.mark.anyio
async def test_call_gives_up_after_the_last_step() -> None:
    calls = _Calls([ConnectionRefusedError() for _ in range(10)])
    with pytest.raises(KubeAPIError) as info:
        await _api().call("probe", calls)
    assert info.value.attempts == 5 and info.value.retryable and info.value.status == 0
    assert len(calls.timeouts) == 5


@pytest.mark.anyio
async def test_call_does_not_retry_forbidden() -> None:
    calls = _Calls([api_exception(403, "Forbidden"), api_exception(403, "Forbidden")])
    with pytest.raises(KubeAPIError) as info:
        await _api().call("list Services", calls)
    err = info.value
    assert (err.status, err.reason, err.retryable, err.attempts) == (403, "Forbidden", False, 1)
    assert err.step == "list Services"
    assert len(calls.timeouts) == 1


def test_api_client_transport_retries_are_disabled_on_a_copy() -> None:
    from kubernetes import client

    original = client.ApiClient()
    api = KubeAPI(original)
    assert api.api_client.configuration.retries is False
    assert original.configuration.retries is None
