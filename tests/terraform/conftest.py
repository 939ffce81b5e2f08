"""Fixtures for the Terraform tests (helpers live in terraform_support).

Every test under tests/terraform/ gets the ``terraform`` marker here; tests that run
the real CLI or the Go provider also carry ``interop`` (so on CI they cannot skip).

* ``terraform_cli`` (session): path of the terraform CLI built from the module proxy.
* ``go_provider`` (session): path of the Go comparison provider
  ``terraform-provider-example``.
* ``terraform_workspace`` (function): a factory
  ``terraform_workspace(provider, *, source="plugwire/example", install="dev_overrides",
  env=None) -> Workspace`` for an isolated working directory under ``tmp_path``.
* ``ops_protocol`` (function, parametrized ``tfplugin5``/``tfplugin6``) and ``ops_log``
  (function): the protocol the ``ops`` example provider serves and its log file, for
  ``terraform_support.ops_workspace``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from terraform_support import (
    EXAMPLE_SOURCE,
    Install,
    Workspace,
    WorkspaceFactory,
    go_provider_binary,
    terraform_binary,
)

HERE = Path(__file__).resolve().parent


#: The first test that needs the CLI (or the Go provider) also builds it when the Go
#: build cache is cold (the CLI: about 260 s on 2 busy cores, plus module downloads on a
#: new machine): it alone gets this timeout instead of the suite's 300 s.
COLD_BUILD_TIMEOUT = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    waiting = {"terraform_cli", "go_provider"}
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.terraform)
        builds = waiting & set(getattr(item, "fixturenames", ()))
        if builds:
            item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT))
            waiting -= builds


@pytest.fixture(scope="session")
def terraform_cli() -> Path:
    return terraform_binary()


@pytest.fixture(scope="session")
def go_provider() -> Path:
    return go_provider_binary()


@pytest.fixture
def terraform_workspace(terraform_cli: Path, tmp_path: Path) -> WorkspaceFactory:
    count = 0

    def make(
        provider: Path | Sequence[str],
        *,
        source: str = EXAMPLE_SOURCE,
        install: Install = "dev_overrides",
        env: Mapping[str, str] | None = None,
    ) -> Workspace:
        nonlocal count
        count += 1
        root = tmp_path / f"tf{count}"
        return Workspace(terraform_cli, root, {source: provider}, install=install, extra_env=env)

    return make


@pytest.fixture(params=[5, 6], ids=["tfplugin5", "tfplugin6"])
def ops_protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def ops_log(tmp_path: Path) -> Path:
    return tmp_path / "ops.log"
