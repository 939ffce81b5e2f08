"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .provider import ADDRESS, GreeterProvider, Greeting, Message, Shout, provider

__all__ = ["ADDRESS", "GreeterProvider", "Greeting", "Message", "Shout", "provider"]
__version__ = "{{ cookiecutter.version }}"
