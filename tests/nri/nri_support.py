"""Helpers shared by the NRI tests (a uniquely named module: several test folders
have a ``conftest`` and they may run in one pytest session)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from google.protobuf import json_format
from google.protobuf.message import Message

from plugwire.core.process import PluginProcess

M = TypeVar("M", bound=Message)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "nri"


class GoRuntime:
    """containerd/nri's pkg/adaptation in a child process, driven by JSON lines."""

    def __init__(self, proc: anyio.abc.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        assert proc.stdout is not None
        self._out = BufferedByteReceiveStream(proc.stdout)

    async def cmd(self, op: str, *, reply_within: float = 60, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        await self.proc.stdin.send((json.dumps({"op": op, **kwargs}) + "\n").encode())
        with anyio.fail_after(reply_within):
            line = await self._out.receive_until(b"\n", 64 << 20)
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def ok(self, op: str, **kwargs: Any) -> dict[str, Any]:
        reply = await self.cmd(op, **kwargs)
        assert reply["ok"], f"{op} failed: {reply.get('error')}\n{self.log.read_text()[-3000:]}"
        result: dict[str, Any] = reply.get("result", {})
        return result


@asynccontextmanager
async def open_go_runtime(binary: Path, log: Path) -> AsyncIterator[GoRuntime]:
    """Run the Go adaptation harness; stop it (and its plugins) on exit."""
    with open(log, "wb") as errf:  # noqa: ASYNC230 (a child stderr needs a real file)
        proc = await anyio.open_process([str(binary)], stderr=errf)
        runtime = GoRuntime(proc, log)
        try:
            yield runtime
        finally:
            with anyio.move_on_after(5, shield=True):
                try:
                    await runtime.cmd("stop", reply_within=5)
                except Exception:
                    pass
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                with anyio.move_on_after(5, shield=True):
                    await proc.wait()


def to_dict(msg: Message) -> dict[str, Any]:
    """A message as the Go harness prints it (protojson, proto field names)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
    """A message from the protojson dicts the Go harness takes."""
    return json_format.ParseDict(data, cls())


def go_plugin_argv(binary: Path, socket: Path, name: str, flags: Sequence[str]) -> list[str]:
    """``cmd/nriplugin`` started externally as ``NN-name``, dialling ``socket``."""
    idx, base = name.split("-", 1)
    return [str(binary), "-socket", str(socket), "-idx", idx, "-name", base, *flags]


@asynccontextmanager
async def external_processes(argvs: Mapping[str, Sequence[str]]) -> AsyncIterator[None]:
    """Externally started plugins (name -> argv) for the block, stopped on exit."""
    async with AsyncExitStack() as stack:
        for name, argv in argvs.items():
            await stack.enter_async_context(
                PluginProcess(argv, env={}, name=name, capture_stdout=False)
            )
        yield


def install_plugins(root: Path, plugins: Mapping[str, tuple[Path, str]]) -> tuple[Path, Path]:
    """Pre-install ``plugins`` (``NN-name`` -> (binary, config text)) under ``root``:
    the plugin and config directories to hand a runtime."""
    plugin_dir, conf_dir = root / "plugins", root / "conf.d"
    plugin_dir.mkdir(parents=True)
    conf_dir.mkdir()
    for name, (binary, config) in plugins.items():
        shutil.copy(binary, plugin_dir / name)
        (conf_dir / f"{name}.conf").write_text(config)
    return plugin_dir, conf_dir


def example_source(name: str) -> str:
    """The source of ``docs/examples/nri/<name>`` without its shebang line."""
    return (EXAMPLES / name).read_text().split("\n", 1)[1]


def python_plugin_executable(directory: Path, name: str, module_source: str) -> Path:
    """Write an executable ``NN-name`` plugin running ``module_source`` with this Python."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{module_source}")
    os.chmod(path, 0o755)
    return path


def pod(pod_id: str = "pod0", **kw: Any) -> dict[str, Any]:
    return {"id": pod_id, "name": pod_id, "uid": f"uid-{pod_id}", "namespace": "default", **kw}


def container(ctr_id: str, pod_id: str = "pod0", **kw: Any) -> dict[str, Any]:
    return {"id": ctr_id, "pod_sandbox_id": pod_id, "name": ctr_id, **kw}
