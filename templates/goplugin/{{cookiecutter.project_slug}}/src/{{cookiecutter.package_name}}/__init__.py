"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .contract import HANDSHAKE, PLUGIN_KEY

__all__ = ["HANDSHAKE", "PLUGIN_KEY"]
__version__ = "{{ cookiecutter.version }}"
