"""The built-in task plugins, registered through the ``plugwire.task_plugins`` entry points.

``env`` (payload ``env``: variables for the task), ``success`` (the task succeeds only
if its process did), ``maxruntime`` (payload ``maxRunTime``: abort the task after so
many seconds), ``tasklog`` (the task log to a file and to :mod:`logging`) and
``artifacts`` (payload ``artifacts``: copy files out of the working directory).
"""

from __future__ import annotations

from .artifacts import ArtifactsProvider
from .env import EnvProvider
from .maxruntime import MaxRunTimeProvider
from .success import SuccessProvider
from .tasklog import TaskLogProvider

__all__ = [
    "ArtifactsProvider",
    "EnvProvider",
    "MaxRunTimeProvider",
    "SuccessProvider",
    "TaskLogProvider",
]
