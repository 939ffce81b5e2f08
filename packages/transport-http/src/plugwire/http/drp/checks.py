"""What dr-provision checks against a provider's definition before calling it.

A config missing ``RequiredParams`` and an action the definition does not declare
(or that misses its required params or object) are refused on the host side; nothing
is sent to the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ActionRefusedError, ConfigRefusedError
from .models import Action, PluginProvider

__all__ = ["check_action", "check_config"]


def check_config(definition: PluginProvider, params: Mapping[str, Any], *, peer: str) -> None:
    """:class:`ConfigRefusedError` (400, one ``Missing required parameter: <name>``
    message each, dr-provision's wording) when ``params`` miss ``RequiredParams``."""
    missing = [name for name in definition.required_params if name not in params]
    if missing:
        raise ConfigRefusedError(
            f"Missing required params for {peer}: {', '.join(missing)}",
            code=400,
            key=peer,
            messages=[f"Missing required parameter: {name}" for name in missing],
            peer=peer,
            step="config",
        )


def check_action(
    definition: PluginProvider, action: Action, *, peer: str, model_type: str | None = None
) -> None:
    """:class:`ActionRefusedError`: 404 for a command the definition does not declare,
    400 for missing required params or a missing object of a model action."""
    declared = definition.find_action(action.command, model_type)
    step = f"action {action.command}"
    if declared is None:
        known = sorted({a.command for a in definition.available_actions})
        raise ActionRefusedError(
            f"Unknown action: {action.command} (the provider declares {known})",
            code=404,
            key=peer,
            messages=[f"Unknown action: {action.command}"],
            peer=peer,
            step=step,
        )
    missing = [p for p in declared.required_params if p not in action.params]
    if missing:
        raise ActionRefusedError(
            f"Missing required params for {action.command}: {', '.join(missing)}",
            code=400,
            key=peer,
            peer=peer,
            step=step,
        )
    if declared.model and action.model is None:
        raise ActionRefusedError(
            f"Action {action.command} needs a {declared.model} object",
            code=400,
            key=peer,
            peer=peer,
            step=step,
        )
