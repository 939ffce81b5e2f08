"""NRI: plugin names and indices that try path or log injection are refused, both
by the checks the runtime applies at registration and by a live runtime."""

from __future__ import annotations

import pytest

from plugwire.core.errors import ConfigError
from plugwire.ttrpc.nri import api

pytestmark = pytest.mark.nri

NAMES = [
    "../evil",
    "/etc/passwd",
    "a/b",
    "a\nlevel=error msg=forged",
    "a\rb",
    "a b",
    "",
    "é",
    "a\0b",
]
INDICES = ["../", "1/", "/1", "1\n", "١٢", "123", "", " 1", "0x"]


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_injection_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        api.check_plugin_name(name)
    assert info.value.step == "plugin name"


@pytest.mark.parametrize("idx", INDICES, ids=repr)
def test_injection_indices_are_refused(idx: str) -> None:
    with pytest.raises(ConfigError):
        api.check_plugin_index(idx)


@pytest.mark.parametrize("name", ["10-adjuster", "99-a.b_c+d"])
def test_ordinary_names_pass(name: str) -> None:
    idx, base = api.parse_plugin_name(name)
    api.check_plugin_index(idx)
    api.check_plugin_name(base)
