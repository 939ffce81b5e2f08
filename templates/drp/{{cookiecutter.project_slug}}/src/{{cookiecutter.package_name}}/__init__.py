"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .provider import DEFINITION, GREETING_PARAM, SHOUT_PARAM, STATUS_COMMAND, Greeter

__all__ = ["DEFINITION", "GREETING_PARAM", "SHOUT_PARAM", "STATUS_COMMAND", "Greeter"]
__version__ = "{{ cookiecutter.version }}"
