"""The package's lazy public API: every exported name resolves to its defining module."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import plugwire.grpc
from plugwire.grpc import _yamux_bridge, binding, yamux


def test_every_exported_name_resolves() -> None:
    for name in plugwire.grpc.__all__:
        assert getattr(plugwire.grpc, name) is not None, name
    assert set(plugwire.grpc.__all__) <= set(dir(plugwire.grpc))


def test_binding_and_yamux_names_are_the_defining_objects() -> None:
    assert plugwire.grpc.add_servicer is binding.add_servicer
    assert plugwire.grpc.generic_handler is binding.generic_handler
    assert plugwire.grpc.PortableContext is binding.PortableContext
    assert plugwire.grpc.YamuxConfig is yamux.YamuxConfig
    assert plugwire.grpc.YamuxStream is yamux.YamuxStream
    assert plugwire.grpc.GoPluginMuxer is _yamux_bridge.GoPluginMuxer
    assert plugwire.grpc.YamuxServeBridge is _yamux_bridge.YamuxServeBridge
    assert plugwire.grpc.YamuxDialBridge is _yamux_bridge.YamuxDialBridge
    assert plugwire.grpc.NoRouteError is _yamux_bridge.NoRouteError
    assert plugwire.grpc.yamux is yamux
    assert plugwire.grpc.binding is binding


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = plugwire.grpc.no_such_name


def test_names_load_on_first_use() -> None:
    code = textwrap.dedent(
        """
        import sys
        import plugwire.grpc as g
        lazy = ("plugwire.grpc.binding", "plugwire.grpc.yamux", "plugwire.grpc._yamux_bridge")
        assert not [m for m in lazy if m in sys.modules], sorted(sys.modules)
        assert g.yamux.Session.__module__.startswith("plugwire.grpc.yamux")
        assert "plugwire.grpc._yamux_bridge" not in sys.modules
        g.GoPluginMuxer
        g.add_servicer
        assert all(m in sys.modules for m in lazy)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
