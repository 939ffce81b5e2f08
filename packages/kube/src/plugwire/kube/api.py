"""A small async façade over the official ``kubernetes`` client.

Every call runs in a worker thread with a request timeout (``_request_timeout``) and
is retried with :class:`~plugwire.kube.retry.Backoff` when — and only when —
:func:`~plugwire.kube.retry.is_retryable` says the error is transient. Failures
surface as :class:`~plugwire.kube.errors.KubeAPIError`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .errors import KubeAPIError
from .retry import DEFAULT_BACKOFF, Backoff, is_retryable, status_and_reason

__all__ = ["DEFAULT_TIMEOUT", "KubeAPI", "load_api_client", "meta"]

T = TypeVar("T")

#: Seconds one API request may take (connect + read) unless the caller says otherwise.
DEFAULT_TIMEOUT = 10.0

_log = logging.getLogger("plugwire.kube")


def meta(obj: Any) -> Any:
    """``obj.metadata``, which the API always fills in on objects it returns."""
    m = getattr(obj, "metadata", None)
    if m is None:
        from plugwire.core.errors import ProtocolError

        raise ProtocolError("API object without metadata", step="api", seen=type(obj).__name__)
    return m


def load_api_client(kubeconfig: str | None = None, *, context: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient``: from ``kubeconfig`` when given, else in-cluster
    config when running in a pod, else the default kubeconfig (``$KUBECONFIG``,
    ``~/.kube/config``)."""
    from kubernetes import config

    if kubeconfig is not None:
        return config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        return config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
    from kubernetes import client

    return client.ApiClient()


def _without_transport_retries(api_client: Any) -> Any:
    """A client on a copy of ``api_client``'s configuration with urllib3's own retries off.

    urllib3 silently retries failed connections three times by default; plugwire
    applies its own :class:`Backoff` instead, so it must see every failure.
    """
    import copy

    from kubernetes import client

    config = api_client.configuration
    if config.retries is False:
        return api_client
    config = copy.deepcopy(config)
    config.retries = False
    return client.ApiClient(configuration=config)


class KubeAPI:
    """The API calls plugwire.kube makes, each bounded by ``timeout`` and retried.

    ``api_client`` is a ``kubernetes.client.ApiClient``. ``peer`` names the plugin in
    errors.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff = DEFAULT_BACKOFF,
        peer: str | None = None,
    ) -> None:
        from kubernetes import client

        self.api_client = _without_transport_retries(api_client)
        self.timeout = timeout
        self.backoff = backoff
        self.peer = peer
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    async def call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs, _request_timeout=timeout)`` in a thread, with retries.

        ``what`` names the call in errors (``create Deployment default/kv``).
        """
        kwargs.setdefault("_request_timeout", self.timeout)
        bound = functools.partial(fn, *args, **kwargs)
        delays = iter(self.backoff.delays())
        attempt = 0
        while True:
            attempt += 1
            try:
                return await anyio.to_thread.run_sync(bound, abandon_on_cancel=True)
            except Exception as exc:
                retryable = is_retryable(exc)
                delay = next(delays, None) if retryable else None
                if delay is None:
                    status, reason = status_and_reason(exc)
                    raise KubeAPIError(
                        f"{what} failed" + (f" after {attempt} attempts" if attempt > 1 else ""),
                        status=status,
                        reason=reason,
                        retryable=retryable,
                        attempts=attempt,
                        peer=self.peer,
                        step=what,
                    ) from exc
                _log.debug(
                    "%s: attempt %d failed (%s), retrying in %.3fs", what, attempt, exc, delay
                )
                await anyio.sleep(delay)
