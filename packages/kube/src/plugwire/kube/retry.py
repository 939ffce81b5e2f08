"""Retrying Kubernetes API calls: which errors are transient, and the backoff between tries.

:class:`Backoff` mirrors ``k8s.io/apimachinery/pkg/util/wait.Backoff`` with the
defaults of the original intercom client (``DefaultRetry``: 5 steps, 10 ms, factor
1.0, jitter 0.1). :func:`is_retryable` is the counterpart of its
``IsRetryableKubeAPIError``: NotFound, Forbidden, Invalid, MethodNotSupported (and the
other client errors that cannot heal by themselves) are never retried.
"""

from __future__ import annotations

import random
import re
import socket
from collections.abc import Iterator

import attrs

__all__ = ["DEFAULT_BACKOFF", "Backoff", "is_retryable", "status_and_reason"]

#: HTTP statuses that are definitive answers: retrying cannot change them.
_FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 409, 410, 413, 415, 422})
#: Status reasons (``metav1.StatusReason``) that are definitive.
_FINAL_REASONS = frozenset(
    {
        "NotFound",
        "Forbidden",
        "Invalid",
        "MethodNotAllowed",
        "MethodNotSupported",
        "Unauthorized",
        "AlreadyExists",
        "Conflict",
        "BadRequest",
        "Gone",
        "NotAcceptable",
        "UnsupportedMediaType",
        "RequestEntityTooLarge",
    }
)


_WS_HANDSHAKE = re.compile(r"Handshake status (\d{3})\s*([A-Za-z ]*)")
_HTTP_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        from plugwire.core.errors import ConfigError

        raise ConfigError(f"Backoff.{attr.name} must be >= 0", step="backoff", seen=value)


@attrs.frozen
class Backoff:
    """How often and how long to wait between tries.

    ``steps`` is the number of tries; before try *n* (n >= 2) the call sleeps
    ``duration * factor**(n-2)`` seconds, capped at ``cap`` when given, plus up to
    ``jitter`` times that at random.
    """

    steps: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    duration: float = attrs.field(default=0.010, validator=_positive)
    factor: float = attrs.field(default=1.0, validator=_positive)
    jitter: float = attrs.field(default=0.1, validator=_positive)
    cap: float | None = None

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The ``steps - 1`` sleeps between the tries."""
        rand = rng or random
        duration = self.duration
        for _ in range(self.steps - 1):
            delay = min(duration, self.cap) if self.cap is not None else duration
            if self.jitter > 0:
                delay += rand.random() * self.jitter * delay
            yield delay
            duration *= self.factor


#: ``wait.Backoff{Steps: 5, Duration: 10 * time.Millisecond, Factor: 1.0, Jitter: 0.1}``.
DEFAULT_BACKOFF = Backoff()


def status_and_reason(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and Kubernetes ``Status.reason`` of a client exception.

    ``(0, "<error text>")`` for errors where the server was not reached.
    """
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = str(exc.reason or "")
        if not status:
            # WebSocket calls (port-forward) wrap the upgrade answer in the text.
            match = _WS_HANDSHAKE.search(reason)
            if match:
                status = int(match.group(1))
                reason = _HTTP_REASONS.get(status, match.group(2).strip() or reason)
        body = exc.body
        if body:
            import json

            try:
                doc = json.loads(body)
            except (ValueError, TypeError):
                doc = None
            if isinstance(doc, dict) and doc.get("reason"):
                reason = str(doc["reason"])
        return status, reason
    return 0, f"{type(exc).__name__}: {exc}"


def is_retryable(exc: BaseException) -> bool:
    """Whether an API error is worth retrying.

    Retryable: the server could not be reached (connection refused/reset, timeouts,
    TLS handshakes cut short), HTTP 429, 500, 502, 503, 504 and reasons such as
    ``ServerTimeout``, ``Timeout``, ``TooManyRequests``, ``InternalError``,
    ``ServiceUnavailable``. Not retryable: NotFound, Forbidden, Invalid,
    MethodNotSupported/MethodNotAllowed, Unauthorized, AlreadyExists, Conflict,
    BadRequest and the other definitive 4xx answers; programming errors.
    """
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status, reason = status_and_reason(exc)
        if reason in _FINAL_REASONS or status in _FINAL_STATUSES:
            return False
        if status == 0:  # WebSocket calls wrap connection failures this way
            return True
        return status == 429 or status >= 500
    try:
        import urllib3.exceptions as u3
    except ImportError:  # pragma: no cover - urllib3 comes with kubernetes
        u3 = None  # type: ignore[assignment]
    if u3 is not None and isinstance(
        exc,
        (u3.MaxRetryError, u3.ProtocolError, u3.TimeoutError, u3.NewConnectionError, u3.SSLError),
    ):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError, socket.timeout, socket.gaierror))
