"""The NRI runtime from blocking code, through plugwire.core.blocking."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plugwire.core.blocking import BlockingHost
from plugwire.ttrpc.nri import Runtime
from plugwire.ttrpc.nri._generated import api_pb2 as pb


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_runtime_hosts_the_example_plugin(tmp_path: Path, backend: str) -> None:
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    launcher = plugins / "10-adjuster"
    launcher.write_text(
        f"#!{sys.executable}\nfrom plugwire.ttrpc.nri.example import main\nmain()\n"
    )
    launcher.chmod(0o755)
    (conf / "adjuster.conf").write_text("memory_limit=268435456\n")
    pod = pb.PodSandbox(id="pod0", name="pod", namespace="default")
    ctr = pb.Container(id="ctr0", pod_sandbox_id="pod0", name="ctr", env=["A=1"])
    with BlockingHost(backend=backend) as host:
        runtime = host.enter(  # built on the loop: the runtime holds anyio primitives
            lambda: Runtime(
                "blocking",
                "0.1",
                socket_path=tmp_path / "nri.sock",
                plugin_path=plugins,
                config_path=conf,
                registration_timeout=30,
            )
        )
        [info] = runtime.plugins  # a property: read as it is
        assert info.name == "10-adjuster"
        reply = runtime.create_container(pod, ctr)  # a coroutine method, called plainly
        env = {e.key: e.value for e in reply.adjust.env}
        assert env["ADJUSTED_BY"] == "10-adjuster"
        assert reply.adjust.linux.resources.memory.limit.value == 268435456
    assert not (tmp_path / "nri.sock").exists()  # leaving closed the runtime
