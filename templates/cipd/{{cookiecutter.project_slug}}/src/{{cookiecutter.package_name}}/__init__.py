"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .plugin import ALLOWED_PREFIX, METADATA_KEY, PLUGIN_VERSION, decide

__all__ = ["ALLOWED_PREFIX", "METADATA_KEY", "PLUGIN_VERSION", "decide"]
__version__ = "{{ cookiecutter.version }}"
