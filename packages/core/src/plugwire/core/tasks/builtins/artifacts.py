"""``artifacts``: copy declared files and folders out of the task's working directory.

Configuration ``directory`` (required): artifacts land in
``<directory>/<task_id>/<run_id>/<name>``. Payload ``artifacts``: a list of
``{"path": ..., "type": "file" | "directory", "name": ...}`` (``type`` defaults to
``file``, ``name`` to ``path``). In ``stopped`` every artifact is copied; a missing one
is logged and makes ``stopped`` return False (the task fails); a path or name leaving
its directory is a malformed payload.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from ..context import TaskContext
from ..engine import ResultSet
from ..errors import FeatureNotSupportedError, MalformedPayloadError
from ..plugin import Plugin, PluginOptions, PluginProvider, TaskPlugin, TaskPluginOptions
from ..schema import JsonSchema, object_schema

__all__ = ["ArtifactsProvider"]

_PAYLOAD = object_schema(
    {
        "artifacts": {
            "title": "Artifacts",
            "description": "Files and folders to copy out of the working directory.",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "type": {"enum": ["file", "directory"]},
                    "name": {"type": "string", "minLength": 1},
                },
                "required": ["path"],
                "additionalProperties": False,
            },
        }
    }
)


def _destination(base: Path, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise MalformedPayloadError(
            f"artifact name {name!r} must be a relative path without '..'", step="artifacts"
        )
    return base / rel


class _ArtifactsTask(TaskPlugin):
    def __init__(
        self, context: TaskContext, out: Path, artifacts: Sequence[Mapping[str, Any]]
    ) -> None:
        self._context = context
        self._out = out
        self._artifacts = list(artifacts)
        #: Where each artifact was copied to.
        self.copied: list[Path] = []

    async def stopped(self, result: ResultSet) -> bool:
        ok = True
        malformed: list[MalformedPayloadError] = []
        for artifact in self._artifacts:
            path = artifact["path"]
            kind = artifact.get("type", "file")
            try:
                dest = _destination(self._out, artifact.get("name", path))
                if kind == "directory":
                    src = await result.extract_folder(path)
                else:
                    src = await result.extract_file(path)
            except MalformedPayloadError as exc:
                malformed.append(exc)
                continue
            except FileNotFoundError:
                self._context.log_error(f"artifact {path!r} ({kind}) not found")
                ok = False
                continue
            except FeatureNotSupportedError:
                malformed.append(
                    MalformedPayloadError(f"the engine cannot extract artifact {path!r}")
                )
                continue
            await anyio.to_thread.run_sync(_copy, src, dest, kind == "directory")
            self._context.log(f"artifact {path!r} -> {dest}")
            self.copied.append(dest)
        if malformed:
            raise MalformedPayloadError.merge(malformed, step="artifacts")
        return ok


def _copy(src: Path, dest: Path, folder: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)


class _ArtifactsPlugin(Plugin):
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def payload_schema(self) -> JsonSchema:
        return _PAYLOAD

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        info = options.info
        out = self._directory / info.task_id / str(info.run_id)
        return _ArtifactsTask(options.context, out, options.payload.get("artifacts", []))


class ArtifactsProvider(PluginProvider):
    """Provider of the ``artifacts`` plugin; config ``{"directory": ...}`` (required)."""

    def config_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "properties": {"directory": {"type": "string", "minLength": 1}},
            "required": ["directory"],
            "additionalProperties": False,
        }

    async def new_plugin(self, options: PluginOptions) -> Plugin:
        return _ArtifactsPlugin(Path(options.config["directory"]))
