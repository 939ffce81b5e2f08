"""Fixtures for the go-plugin family (helpers live in goplugin_support)."""

from __future__ import annotations

import pytest
from goplugin_support import GoBinaries


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def go() -> GoBinaries:
    return GoBinaries()
