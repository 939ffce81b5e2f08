"""Errors of the dr-provision plugin provider protocol."""

from __future__ import annotations

import json
from collections.abc import Sequence

from plugwire.core.errors import PlugwireError

from .models import Error

__all__ = ["ActionRefusedError", "ConfigRefusedError", "ProviderError", "PublishRefusedError"]


class ProviderError(PlugwireError):
    """A ``models.Error`` as a Python exception.

    Provider code raises it to answer a call with that error (``code`` becomes the
    HTTP status); the host raises it when a provider answers with one. ``error`` is
    the model; a zero or invalid code is replaced by 500 so that a reply never
    carries status 0.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = 400,
        model: str = "plugin",
        key: str = "",
        type: str = "plugin",
        messages: Sequence[str] | None = None,
        peer: str | None = None,
        step: str | None = None,
    ) -> None:
        msgs = tuple(messages) if messages is not None else ((message,) if message else ())
        self.error = Error(code=code, messages=msgs, model=model, key=key, type=type).with_code()
        super().__init__(message, peer=peer, step=step, seen=f"HTTP {self.error.code}")

    @property
    def code(self) -> int:
        return self.error.code

    @classmethod
    def from_model(
        cls, error: Error, *, peer: str | None = None, step: str | None = None
    ) -> ProviderError:
        """The exception for a decoded ``models.Error``."""
        exc = cls(
            error.describe() or f"error code {error.code}",
            code=error.code,
            model=error.model,
            key=error.key,
            type=error.type,
            messages=error.messages,
            peer=peer,
            step=step,
        )
        exc.error = error if error.code else exc.error
        return exc

    def nested_messages(self) -> list[str]:
        """The messages the Go library sends for a failed config or publish: the
        whole error, JSON-encoded, as the one message."""
        return [json.dumps(self.error.to_json(), separators=(",", ":"))]


class ActionRefusedError(ProviderError):
    """The host refused an action before calling the provider: the provider does
    not declare it (404), or required parameters are missing (400)."""


class ConfigRefusedError(ProviderError):
    """The host refused a config before calling the provider: the Params miss some
    of the definition's ``RequiredParams`` (400, one ``Missing required parameter``
    message each, as dr-provision words it)."""


class PublishRefusedError(ProviderError):
    """The host refused to publish an event to a provider whose definition says
    ``HasPublish: false``: it does not take events (404, as the Go library's missing
    ``/publish`` route answers), and nothing was sent."""
