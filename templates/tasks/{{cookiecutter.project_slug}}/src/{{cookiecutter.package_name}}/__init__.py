"""{{ cookiecutter.description.rstrip(".") }}."""

from __future__ import annotations

from .plugin import ENV_PREFIX, PAYLOAD_KEY, PLUGIN_NAME, LabelsPlugin, LabelsTask, Provider

__all__ = ["ENV_PREFIX", "PAYLOAD_KEY", "PLUGIN_NAME", "LabelsPlugin", "LabelsTask", "Provider"]
__version__ = "{{ cookiecutter.version }}"
