"""Taskcluster-style task plugins: per-task lifecycle hooks around a sandbox engine.

Providers register by name (the ``plugwire.task_plugins`` entry-point group or
:func:`register`); a :class:`PluginManager` enables the configured ones, merges their
payload schemas and fans each lifecycle stage out to them; :func:`run_task` runs a
task through an :class:`Engine` (:class:`LocalProcessEngine` runs local processes)
and every stage. See ``docs/task-plugins.md``.
"""

from __future__ import annotations

from .context import LogSink, TaskContext, TaskInfo
from .engine import Engine, ResultSet, Sandbox, SandboxBuilder, SandboxOptions
from .errors import (
    FatalInternalError,
    FeatureNotSupportedError,
    MalformedPayloadError,
    NamingConflictError,
    NonFatalInternalError,
    PluginFailure,
    PluginLoadError,
    RegistryError,
    SchemaConflictError,
    StageOrderError,
    StageTimeoutError,
    TaskPluginError,
)
from .handle import TASK_CAPABILITIES, TaskPluginHandle, task_controller
from .local import LocalProcessEngine
from .manager import (
    DEFAULT_STAGE_TIMEOUT,
    PluginManager,
    TaskPluginManager,
    aggregate_failures,
    manager_config_schema,
)
from .plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from .reasons import ExceptionReason, Stage
from .registry import (
    ENTRY_POINT_GROUP,
    RESERVED_NAMES,
    Registry,
    default_registry,
    plugins,
    register,
)
from .run import StageEvent, TaskResult, run_task
from .schema import (
    JsonSchema,
    check_schema,
    filter_payload,
    merge_payload_schemas,
    object_schema,
    schema_errors,
    validate_payload,
)

__all__ = [
    "DEFAULT_STAGE_TIMEOUT",
    "ENTRY_POINT_GROUP",
    "RESERVED_NAMES",
    "TASK_CAPABILITIES",
    "Engine",
    "ExceptionReason",
    "FatalInternalError",
    "FeatureNotSupportedError",
    "JsonSchema",
    "LocalProcessEngine",
    "LogSink",
    "MalformedPayloadError",
    "NamingConflictError",
    "NonFatalInternalError",
    "Plugin",
    "PluginFailure",
    "PluginLoadError",
    "PluginManager",
    "PluginOptions",
    "PluginProvider",
    "Registry",
    "RegistryError",
    "ResultSet",
    "Sandbox",
    "SandboxBuilder",
    "SandboxOptions",
    "SchemaConflictError",
    "Stage",
    "StageEvent",
    "StageOrderError",
    "StageTimeoutError",
    "TaskContext",
    "TaskInfo",
    "TaskPlugin",
    "TaskPluginError",
    "TaskPluginHandle",
    "TaskPluginManager",
    "TaskPluginOptions",
    "TaskResult",
    "aggregate_failures",
    "check_schema",
    "default_registry",
    "filter_payload",
    "manager_config_schema",
    "merge_payload_schemas",
    "object_schema",
    "plugins",
    "register",
    "run_task",
    "schema_errors",
    "task_controller",
    "validate_payload",
]
