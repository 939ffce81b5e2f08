"""``launch("module:name")``: a provider binary's main that imports with the cyclic
collector paused, freezes what start-up made, resumes the collector and serves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from provider_support import anyio_backend
from provider_support import launch as launch_provider

from plugwire.grpc.terraform import cty, launch

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend"]

HERE = Path(__file__).parent
PROBE_TYPE = cty.Object(
    {"paused_at_import": cty.Bool, "enabled_now": cty.Bool, "frozen": cty.Number}
)


def _cmd(target: str) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        f"from plugwire.grpc.terraform import launch; launch({target!r})"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("version", [5, 6])
async def test_launch_serves_with_the_collector_paused_while_importing(version: int) -> None:
    async with launch_provider(version, _cmd("launch_probe:provider")) as tf:
        reply = await tf.call("ReadDataSource", type_name="probe_gc", config=tf.dv({}, PROBE_TYPE))
        assert list(reply.diagnostics) == []
        got = tf.value(reply.state, PROBE_TYPE)
    assert got["paused_at_import"] is True  # the provider module loaded with it paused
    assert got["enabled_now"] is True  # and it runs again while serving
    assert got["frozen"] > 10_000  # start-up's objects frozen out of its reach


@pytest.mark.parametrize("version", [5, 6])
async def test_a_launch_s_certificates_come_from_a_helper_it_forked_and_reaped(
    version: int,
) -> None:
    # The launch forks a helper before importing; the helper makes the AutoMTLS
    # certificates (the handshake's and the TLS front end's private leg) on another
    # core. The launch serves with them (this client's TLS handshake checks the
    # announced one) without ever loading cryptography, and leaves no zombie.
    probe = cty.Object({"cryptography_loaded": cty.Bool, "children": cty.List(cty.String)})
    env = {"PLUGWIRE_FORKSERVER": "0"}  # a fork server would be a child of its own
    async with launch_provider(version, _cmd("launch_probe:provider"), env) as tf:
        reply = await tf.call("ReadDataSource", type_name="probe_process", config=tf.dv({}, probe))
        assert list(reply.diagnostics) == []
        got = tf.value(reply.state, probe)
    assert got == {"cryptography_loaded": False, "children": []}


async def test_launch_takes_a_provider_object_too() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import launch_probe; "
        "launch_probe.PROVIDER = launch_probe.provider(); "
        "from plugwire.grpc.terraform import launch; launch('launch_probe:PROVIDER')"
    )
    async with launch_provider(6, [sys.executable, "-c", code]) as tf:
        schema = await tf.call("GetProviderSchema")
        assert sorted(schema.data_source_schemas) == ["probe_gc", "probe_process"]


@pytest.mark.parametrize("target", ["launch_probe", "launch_probe:", ":provider", ""])
def test_a_target_without_module_and_name_is_a_value_error(target: str) -> None:
    with pytest.raises(ValueError, match="module:name"):
        launch(target)


def test_the_example_console_script_goes_through_launch() -> None:
    """``terraform-provider-example`` (and ``python -m ...examples.thing``) is
    ``examples.thing:main``, which launches ``examples.thing._provider:provider``;
    importing the example package itself loads none of the framework."""
    import subprocess

    code = (
        "import sys, plugwire.grpc.terraform.examples.thing as t; "
        "print(sorted(m for m in sys.modules if m.startswith('plugwire.grpc.terraform.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(
        ["plugwire.grpc.terraform.examples", "plugwire.grpc.terraform.examples.thing"]
    )
    from importlib.metadata import entry_points

    (script,) = [
        ep
        for ep in entry_points(group="console_scripts")
        if ep.name == "terraform-provider-example"
    ]
    assert script.value == "plugwire.grpc.terraform.examples.thing:main"
