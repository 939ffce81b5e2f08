"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .proto import SERVICE, CountRequest, GreetReply, GreetRequest, Tick
from .server import Servicer

__all__ = ["SERVICE", "CountRequest", "GreetReply", "GreetRequest", "Servicer", "Tick"]
__version__ = "{{ cookiecutter.version }}"
