"""Wheels and extras: the meta-package pulls in exactly the sub-distributions asked for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTS = [
    "plugwire",
    "plugwire_core",
    "plugwire_grpc",
    "plugwire_ttrpc",
    "plugwire_http",
    "plugwire_kube",
]

pytestmark = pytest.mark.packaging


def _uv() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else [sys.executable, "-m", "uv"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*_uv(), "build", "--all-packages", "--wheel", "--out-dir", str(out), "--quiet"],
        cwd=ROOT,
        check=True,
    )
    return out


def test_every_distribution_builds_in_lockstep(wheels: Path) -> None:
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert [name.split("-")[0] for name in built] == sorted(DISTS)
    assert {name.split("-")[1] for name in built} == {"0.1.0"}


def test_namespace_package_has_no_init_and_each_has_py_typed(wheels: Path) -> None:
    for wheel in wheels.glob("plugwire_*.whl"):
        names = zipfile.ZipFile(wheel).namelist()
        assert "plugwire/__init__.py" not in names, wheel.name
        module = wheel.name.split("-")[0].removeprefix("plugwire_")
        assert f"plugwire/{module}/py.typed" in names, wheel.name
    meta = zipfile.ZipFile(next(wheels.glob("plugwire-0.1.0-*.whl")))
    requires = meta.read("plugwire-0.1.0.dist-info/METADATA").decode()
    for extra in ("grpc", "ttrpc", "http", "kube"):
        assert f"Requires-Dist: plugwire-{extra}==0.1.0; extra == '{extra}'" in requires
    assert "Requires-Dist: plugwire-core==0.1.0\n" in requires


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def _probe(python: Path, modules: list[str]) -> dict[str, bool]:
    code = (
        "import importlib.util, json, sys;"
        f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {modules!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    import json

    return dict(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("extra", "present", "absent"),
    [
        (
            "ttrpc",
            ["plugwire.core", "plugwire.ttrpc", "google.protobuf"],
            ["grpc", "plugwire.grpc", "httpx"],
        ),
        ("http", ["plugwire.core", "plugwire.http", "httpx"], ["grpc", "plugwire.ttrpc"]),
    ],
)
def test_pip_install_meta_package_with_extra(
    wheels: Path, tmp_path: Path, extra: str, present: list[str], absent: list[str]
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    meta = next(wheels.glob("plugwire-0.1.0-*.whl"))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            str(wheels),
            f"{meta}[{extra}]",
        ],
        check=True,
        env=env,
    )
    found = _probe(python, present + absent)
    assert all(found[m] for m in present), found
    assert not any(found[m] for m in absent), found
    cli = subprocess.run(
        [str(python.parent / "plugwire"), "transports"], capture_output=True, text=True, check=True
    )
    listed = {line.split()[0] for line in cli.stdout.splitlines() if line.strip()}
    assert extra in listed and "inproc" in listed


# -- issue 20 item 1: the documented route, each extra alone in a clean venv --------

#: What each extra must serve: a command run in the clean venv that starts one
#: bundled example plugin against a missing peer or a host, and what it must print.
SERVE_CHECK = {
    "grpc": (
        "import asyncio, tempfile\n"
        "from plugwire.grpc.goplugin import ClientConfig, PluginClient\n"
        "from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2\n"
        "from plugwire.grpc.goplugin.examples.kv import KVPlugin\n"
        "import sys\n"
        "async def main():\n"
        "    cfg = ClientConfig(handshake=HANDSHAKE, plugins={'kv_grpc': KVPlugin()},\n"
        "        cmd=[sys.executable, '-m', 'plugwire.grpc.goplugin.examples.kv'],\n"
        "        env={'KV_DIR': tempfile.mkdtemp()})\n"
        "    async with PluginClient(cfg) as c:\n"
        "        kv = c.dispense('kv_grpc')\n"
        "        await kv.Put(kv_pb2.PutRequest(key='a', value=b'served'))\n"
        "        print((await kv.Get(kv_pb2.GetRequest(key='a'))).value.decode())\n"
        "asyncio.run(main())\n"
    ),
    "ttrpc": (
        "import subprocess, sys, tempfile, time, os\n"
        "sock = os.path.join(tempfile.mkdtemp(), 's.sock')\n"
        "srv = subprocess.Popen([sys.executable, '-m', 'plugwire.ttrpc.example', 'serve', sock])\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        if os.path.exists(sock): break\n"
        "        time.sleep(0.1)\n"
        "    out = subprocess.run([sys.executable, '-m', 'plugwire.ttrpc.example', 'call', sock],\n"
        "        capture_output=True, text=True, timeout=60)\n"
        "    assert out.returncode == 0, out.stdout + out.stderr\n"
        "    print('served')\n"
        "finally:\n"
        "    srv.kill()\n"
    ),
    "http": (
        "import anyio\n"
        "from plugwire.http.drp import ProviderHost\n"
        "import sys\n"
        "async def main():\n"
        "    async with ProviderHost() as drp:\n"
        "        p = await drp.launch([sys.executable, '-m', 'plugwire.http.drp._demo_provider'])\n"
        "        print('served', p.definition.name)\n"
        "anyio.run(main)\n"
    ),
    "kube": "import plugwire.kube\nprint('served')\n",
}


# ``wheelhouse``: tests/e2e/conftest.py (scripts/wheelhouse.sh, once per session)
@pytest.mark.parametrize("extra", sorted(SERVE_CHECK))
def test_documented_route_installs_each_extra_alone_and_serves(
    wheelhouse: Path, tmp_path: Path, extra: str
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    assert not str(python).startswith(sys.prefix)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            str(wheelhouse),
            f"plugwire[{extra}]",
        ],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    found = _probe(python, [f"plugwire.{extra}", "plugwire.core"])
    assert all(found.values()), found
    needs = {"kube": {"grpc"}}.get(extra, set())  # plugwire-kube depends on plugwire-grpc
    others = [f"plugwire.{e}" for e in SERVE_CHECK if e != extra and e not in needs]
    assert not any(_probe(python, others).values())
    served = subprocess.run(
        [str(python), "-c", SERVE_CHECK[extra]],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert "served" in served.stdout
