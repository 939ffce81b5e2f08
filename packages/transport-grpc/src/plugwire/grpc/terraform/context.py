"""The per-call :class:`Context` every provider method receives."""

from __future__ import annotations

import datetime as _dt
import enum
from typing import TYPE_CHECKING, Any

import attrs

from .diagnostics import Diagnostics

if TYPE_CHECKING:
    from .provider import Provider

__all__ = ["ClientCapabilities", "Context", "DeferredReason"]


class DeferredReason(enum.IntEnum):
    """Why a plan, read or import is deferred (tfplugin ``Deferred.Reason``)."""

    RESOURCE_CONFIG_UNKNOWN = 1
    PROVIDER_CONFIG_UNKNOWN = 2
    ABSENT_PREREQ = 3


@attrs.frozen
class ClientCapabilities:
    """What the calling Terraform says it supports (tfplugin ``ClientCapabilities``)."""

    deferral_allowed: bool = False
    write_only_attributes_allowed: bool = False

    @classmethod
    def from_proto(cls, message: Any) -> ClientCapabilities:
        if message is None:
            return cls()
        return cls(
            deferral_allowed=message.deferral_allowed,
            write_only_attributes_allowed=message.write_only_attributes_allowed,
        )


@attrs.define
class Context:
    """One protocol call, as the provider code sees it.

    ``diagnostics``: add errors/warnings here (or raise
    :class:`~plugwire.grpc.terraform.TerraformError`). ``provider``: the configured
    :class:`~plugwire.grpc.terraform.Provider` (keep API clients on it).
    ``type_name``: the resource/data source/function called. ``private``: the
    resource's private state, read and write (bytes Terraform stores next to the
    state, never shown). ``renew_at``: set by an ephemeral resource's ``open``/``renew``
    to be renewed then. ``terraform_version`` is known after ``configure``.
    ``protocol_version``: 5 or 6.

    ``identity``: the resource's identity data (a dict shaped by its
    :class:`~plugwire.grpc.terraform.IdentitySchema`), read and write; None until known.
    ``config``: the configuration while planning and applying (write-only attribute
    values are only here, never in the plan or state). ``deferred``: set by
    :meth:`defer`.
    """

    provider: Provider
    type_name: str = ""
    protocol_version: int = 6
    diagnostics: Diagnostics = attrs.field(factory=Diagnostics)
    private: bytes = b""
    renew_at: _dt.datetime | None = None
    client_capabilities: ClientCapabilities = attrs.field(factory=ClientCapabilities)
    terraform_version: str = ""
    identity: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    deferred: DeferredReason | None = None

    def defer(self, reason: DeferredReason = DeferredReason.PROVIDER_CONFIG_UNKNOWN) -> None:
        """Defer this plan/read/import (or, in ``Provider.configure``, every one) to a
        later run; Terraform must allow deferral (``client_capabilities.deferral_allowed``)."""
        self.deferred = reason
