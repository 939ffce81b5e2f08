"""Actions: :class:`Action`, one class per action type (``action`` blocks).

An action is an operation outside the resource lifecycle: ``terraform apply
-invoke=action.<type>.<name>`` runs one, and a resource's ``lifecycle {
action_trigger { events = [after_create, ...] actions = [...] } }`` runs them around
its create/update. Terraform calls ``ValidateActionConfig`` (:meth:`Action.validate`),
``PlanAction`` (:meth:`Action.plan`, the configuration may hold unknown values) and
then the streaming ``InvokeAction`` (:meth:`Action.invoke`): every
:meth:`ActionContext.progress` message is sent to Terraform as it happens (the CLI
prints ``Action action.x.y (...): <message>``), and the diagnostics end the stream.

Deferral: when the provider's ``configure`` deferred, or :meth:`Action.plan` calls
``ctx.defer()``, ``PlanAction`` answers deferred (only if the client capability
``deferral_allowed`` is set, else an error diagnostic); Terraform then defers the
resource whose ``action_trigger`` planned it (``-invoke`` reports an error).

StopProvider (Ctrl-C in Terraform) cancels a running :meth:`Action.invoke`; the
stream then ends with an "Action cancelled" error diagnostic.

Protocol 5.11/6.11 carry no link from an action to the resource that triggered it:
Terraform evaluates the action's configuration (which may reference the resource)
and calls the provider the same way for ``-invoke`` and for ``action_trigger``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from .context import Context
from .diagnostics import TerraformError
from .schema import Schema

__all__ = ["Action", "ActionContext"]


def _drop(message: str) -> None:
    """Progress outside an invocation (validate/plan) goes nowhere."""


@attrs.define
class ActionContext(Context):
    """The :class:`~plugwire.grpc.terraform.Context` of :meth:`Action.invoke`, plus
    :meth:`progress`."""

    on_progress: Callable[[str], None] = attrs.field(default=_drop, repr=False)

    def progress(self, message: str) -> None:
        """Send a progress event to Terraform now (never blocks)."""
        self.on_progress(str(message))


class Action:
    """Base class of an action type: set ``type_name`` and ``schema``, override
    :meth:`invoke` (and :meth:`validate`/:meth:`plan` when needed)."""

    type_name: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()

    async def validate(self, config: dict[str, Any], ctx: Context) -> None:
        """``ValidateActionConfig``: checks beyond the schema's validators."""

    async def plan(self, config: dict[str, Any], ctx: Context) -> None:
        """``PlanAction``: report problems before anything runs (values may be
        :data:`~plugwire.grpc.terraform.cty.UNKNOWN`). ``ctx.defer()`` defers the
        action (and the resource triggering it) to a later run, as for resources;
        Terraform accepts only ``DeferredReason.PROVIDER_CONFIG_UNKNOWN`` for actions."""

    async def invoke(self, config: dict[str, Any], ctx: ActionContext) -> None:
        """``InvokeAction``: do the work; call ``ctx.progress(...)`` as it goes, add
        diagnostics to ``ctx.diagnostics`` or raise
        :class:`~plugwire.grpc.terraform.TerraformError` to fail."""
        raise TerraformError(f"{self.type_name} cannot be invoked", "invoke is not implemented")
