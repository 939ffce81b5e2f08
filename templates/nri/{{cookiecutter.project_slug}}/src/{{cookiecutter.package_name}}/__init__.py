"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .plugin import ADJUSTED_BY, MEMORY_LIMIT, PLUGIN_INDEX, PLUGIN_NAME, Plugin, parse_config

__all__ = ["ADJUSTED_BY", "MEMORY_LIMIT", "PLUGIN_INDEX", "PLUGIN_NAME", "Plugin", "parse_config"]
__version__ = "{{ cookiecutter.version }}"
