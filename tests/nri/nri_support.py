"""Helpers shared by the NRI tests (a uniquely named module: several test folders
have a ``conftest`` and they may run in one pytest session)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

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
