"""The service executable, launched for real and called over ttrpc."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from plugwire.core.errors import RemoteError
from plugwire.core.process import PluginProcess
from plugwire.core.status import StatusCode
from plugwire.ttrpc import Client, ServiceClient

from {{ cookiecutter.package_name }}.proto import SERVICE, CountRequest, GreetRequest

pytestmark = pytest.mark.anyio


async def test_serve_and_call(
    console_script: Callable[[str], str], sockdir: Path, anyio_backend: str
) -> None:
    address = f"unix:{sockdir / 'service.sock'}"
    server = PluginProcess(
        [console_script("server"), address],
        env={"PLUGWIRE_ANYIO_BACKEND": anyio_backend},
        inherit_env=True,
        name="{{ cookiecutter.project_slug }}",
    )
    async with server:
        line = await server.readline_stdout(timeout=20)
        assert line is not None and line.startswith("READY"), server.stderr_tail

        async with await Client.connect(address) as client:
            stub = ServiceClient(client, SERVICE)
            reply = await stub.Greet(GreetRequest(name="Ada"), timeout=5)
            assert reply.message == "{{ cookiecutter.default_greeting }}, Ada!"
            hi = await stub.Greet(GreetRequest(name="Ada"), metadata={"greeting": "Hi"})
            assert hi.message == "Hi, Ada!"
            ticks = [t.value async for t in await stub.Countdown(CountRequest(start=4))]
            assert ticks == [4, 3, 2, 1]

            with pytest.raises(RemoteError) as empty:
                await stub.Greet(GreetRequest(name=""))
            assert empty.value.code == StatusCode.INVALID_ARGUMENT
            with pytest.raises(RemoteError) as too_many:
                _ = [t async for t in await stub.Countdown(CountRequest(start=-1))]
            assert too_many.value.code == StatusCode.OUT_OF_RANGE
            assert (await stub.Greet(GreetRequest(name="Bo"))).message.endswith("Bo!")

        # The bundled client executable against the running server.
        result = await anyio.run_process(
            [console_script("client"), address, "Grace", "2"], check=False
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().splitlines() == [
            "{{ cookiecutter.default_greeting }}, Grace!",
            "2",
            "1",
        ]

        await server.terminate(grace=10)  # SIGTERM: a clean stop
        assert server.returncode == 0, server.stderr_tail
