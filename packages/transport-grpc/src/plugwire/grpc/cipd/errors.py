"""Typed errors of the CIPD admission plugin protocol.

All are :class:`~plugwire.core.errors.PlugwireError` subclasses that name the peer,
the step, and what was expected and seen.
"""

from __future__ import annotations

from collections.abc import Sequence

from plugwire.core.errors import ConfigError, PluginExitedError, PlugwireError, RemoteError
from plugwire.core.status import StatusCode

__all__ = [
    "AdmissionAbortedError",
    "AdmissionDeniedError",
    "InvalidPinError",
    "not_admitted",
]


class InvalidPinError(ConfigError):
    """A package name or instance ID is not valid CIPD syntax."""


class AdmissionDeniedError(RemoteError):
    """The plugin did not admit the package: it answered FailedPrecondition.

    Plugin code raises it (see :func:`not_admitted`) to refuse a deployment; host
    code sees it when awaiting the check. ``message`` is the plugin's reason.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = StatusCode.FAILED_PRECONDITION,
        details: Sequence[bytes] = (),
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details, peer=peer, step=step)


def not_admitted(reason: str) -> AdmissionDeniedError:
    """The error an admission handler raises to refuse a package.

    ``raise not_admitted("experimental packages are not allowed")`` answers the host
    with FailedPrecondition, which CIPD reads as "not admitted".
    """
    return AdmissionDeniedError(reason)


class AdmissionAbortedError(PlugwireError):
    """The admission plugin is terminating: the check will never be decided.

    Every pending and future check of a plugin whose ``ListAdmissions`` stream ended
    (or that was closed, or failed to start) fails with this error.
    ``process_error`` is the plugin's exit (status and stderr tail) when it died.
    """

    def __init__(
        self,
        message: str = "the admission plugin is terminating",
        *,
        process_error: PluginExitedError | None = None,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        seen = None if process_error is None else process_error.seen
        super().__init__(message, peer=peer, step=step, seen=seen)
        self.process_error = process_error
