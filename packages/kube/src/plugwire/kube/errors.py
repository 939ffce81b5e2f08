"""Typed errors of plugwire.kube, all rooted at :class:`plugwire.core.errors.PlugwireError`."""

from __future__ import annotations

from collections.abc import Sequence

from plugwire.core.errors import ConfigError, PluginStartError, PluginTimeoutError, PlugwireError

__all__ = [
    "KubeAPIError",
    "KubeValidationError",
    "PluginAnnounceError",
    "PluginNotReadyError",
]


class KubeValidationError(ConfigError):
    """A plugin spec, Deployment or Service is not usable; ``field`` is the JSON path at fault.

    Raised before anything is sent to the API server.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        expected: object = None,
        seen: object = None,
        peer: str | None = None,
    ) -> None:
        super().__init__(
            f"{field}: {message}", peer=peer, step="validation", expected=expected, seen=seen
        )
        self.field = field


class KubeAPIError(PlugwireError):
    """The Kubernetes API answered with an error (or could not be reached).

    ``status`` is the HTTP status (0 when the server was not reached), ``reason`` the
    Kubernetes ``Status.reason`` (``NotFound``, ``Forbidden``, ``Invalid``...) and
    ``retryable`` whether :func:`plugwire.kube.is_retryable` considers it transient.
    ``attempts`` counts how many times the call was tried.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str,
        retryable: bool,
        attempts: int = 1,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(
            message,
            peer=peer,
            step=step,
            expected="a successful API response",
            seen=f"HTTP {status} {reason}".strip() if status else f"unreachable: {reason}",
        )
        self.status = status
        self.reason = reason
        self.retryable = retryable
        self.attempts = attempts


class PluginNotReadyError(PluginTimeoutError):
    """The plugin's pods did not become ready in time; ``reasons`` says why.

    Each reason is one human-readable line built from pod conditions, container
    statuses (waiting/terminated reasons) and the pods' warning events, e.g.
    ``pod kv-7d9-abc: FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu``.
    """

    def __init__(
        self, message: str, *, reasons: Sequence[str], peer: str | None = None, timeout: float
    ) -> None:
        super().__init__(
            message,
            peer=peer,
            step="readiness",
            expected=f"a ready pod within {timeout:g}s",
            seen="; ".join(reasons) if reasons else "no pods were created",
        )
        self.reasons = tuple(reasons)
        self.timeout = timeout


class PluginAnnounceError(PluginStartError):
    """The plugin's announce line did not show up in its container log in time."""
