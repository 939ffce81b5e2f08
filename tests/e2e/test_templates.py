"""The cookiecutter templates in templates/: each renders a project whose README works as
written on a fresh machine and whose own tests pass, launching the generated plugin for
real through plugwire's host side.

Every template is rendered twice, with its defaults and with non-default variables. The
rendered README's "Develop" block runs as a user's shell would (issue 20 item 2): from
the rendered directory, with the system ``python`` on PATH (not the workspace venv), its
``PIP_FIND_LINKS`` placeholder replaced by the wheelhouse that ``scripts/wheelhouse.sh``
builds once per session: it makes the project's own clean venv, ``pip install -e .``
installs plugwire from the wheelhouse, and the project's pytest and ruff run in that venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    FailedHookException,
)
from cookiecutter.main import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    cookiecutter,
)
from support.installs import clean_env  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


class Family:
    """One template: its plugwire extra, its test marker, and two sets of variables."""

    def __init__(
        self,
        name: str,
        *,
        extra: str,
        marker: str,
        default_slug: str,
        custom: dict[str, str],
        custom_slug: str,
        min_tests: int,
        bad: dict[str, str],
        marks: tuple[str, ...] = (),
        develop_env: Callable[[], dict[str, str]] | None = None,
        timeout: float = 280,
    ) -> None:
        self.name = name
        self.extra = extra
        self.marker = marker
        self.default_slug = default_slug
        self.custom = custom
        self.custom_slug = custom_slug
        self.min_tests = min_tests
        self.bad = bad
        self.marks = marks  # markers beyond the family's (interop: a real upstream peer)
        self.develop_env = develop_env  # more environment for the Develop block
        self.timeout = timeout  # of the Develop block


def _terraform_env() -> dict[str, str]:
    """The harness's terraform CLI (tests/terraform/terraform_support.py, built from the
    module proxy and cached) for the rendered project's tests, which find it in
    ``$TERRAFORM``: they never skip here."""
    from terraform.terraform_support import (  # type: ignore[import-not-found,unused-ignore]
        terraform_binary,
    )

    return {"TERRAFORM": str(terraform_binary())}


FAMILIES = [
    Family(
        "drp",
        extra="http",
        marker="drp",
        default_slug="hello-provider",
        custom={
            "project_name": "Rack Greeter",
            "package_name": "rackgreet",
            "provider_name": "rack-greeter",
            "description": "Greets racked machines",
            "version": "2.3.1",
            "default_greeting": "Good morning",
        },
        custom_slug="rack-greeter",
        min_tests=3,
        bad={"provider_name": "Not A Name"},
    ),
    Family(
        "ttrpc",
        extra="ttrpc",
        marker="ttrpc",
        default_slug="greeter-service",
        custom={
            "project_name": "Shim Helper",
            "package_name": "shimhelper",
            "service_name": "Helper",
            "proto_package": "example.shim.v2",
            "description": "Helps a shim",
            "version": "1.0.0",
            "default_greeting": "Bonjour",
        },
        custom_slug="shim-helper",
        min_tests=2,
        bad={"service_name": "lower case"},
    ),
    Family(
        "nri",
        extra="ttrpc",
        marker="nri",
        default_slug="hello-nri-plugin",
        custom={
            "project_name": "Memory Sizer",
            "package_name": "memsizer",
            "plugin_name": "memsizer",
            "plugin_index": "35",
            "annotation_prefix": "sizer.example.org",
            "description": "Sizes container memory from pod annotations",
            "version": "0.9.0",
        },
        custom_slug="memory-sizer",
        min_tests=5,
        bad={"plugin_index": "7"},
    ),
    Family(
        "cipd",
        extra="grpc",
        marker="cipd",
        default_slug="hello-admission",
        custom={
            "project_name": "Fleet Gate",
            "package_name": "fleetgate",
            "plugin_name": "fleet-gate",
            "allowed_prefix": "fleet/tools/",
            "metadata_key": "security-review",
            "description": "Admits reviewed fleet tools",
            "version": "3.0.0",
        },
        custom_slug="fleet-gate",
        min_tests=2,
        bad={"allowed_prefix": "no-trailing-slash"},
    ),
    Family(
        "tasks",
        extra="grpc",
        marker="tasks",
        default_slug="task-labels",
        custom={
            "project_name": "Worker Tags",
            "package_name": "workertags",
            "plugin_name": "tags",
            "payload_key": "tags",
            "env_prefix": "TAG_",
            "description": "Exports task tags",
            "version": "0.2.0",
        },
        custom_slug="worker-tags",
        min_tests=9,
        bad={"plugin_name": "engine"},
    ),
    Family(
        "goplugin",
        extra="grpc",
        marker="goplugin",
        default_slug="hello-kv-plugin",
        custom={
            "project_name": "Acme Store",
            "package_name": "acmestore",
            "plugin_key": "store",
            "magic_cookie_key": "ACME_PLUGIN",
            "magic_cookie_value": "d6f1c0a2",
            "protocol_version": "3",
            "description": "Acme's key-value store plugin",
            "version": "1.4.0",
        },
        custom_slug="acme-store",
        min_tests=4,
        bad={"magic_cookie_key": "has space"},
    ),
    Family(
        "terraform",
        extra="terraform",
        marker="terraform",
        default_slug="terraform-provider-greeter",
        custom={
            "project_name": "Acme Cloud",
            "package_name": "acmecloud",
            "provider_name": "acme",
            "namespace": "acme-corp",
            "description": "Manages Acme greetings",
            "version": "0.4.0",
            "default_greeting": "Howdy",
        },
        custom_slug="acme-cloud",
        min_tests=4,
        bad={"provider_name": "Acme-Cloud"},
        marks=("interop",),  # its tests run the real terraform CLI
        develop_env=_terraform_env,
        timeout=900,  # a dozen terraform runs, each launching the Python provider
    ),
]

#: A cold build of the terraform CLI (minutes on 2 busy cores) happens in the first
#: terraform case; this is its pytest timeout (the suite's is 300 s).
COLD_BUILD_TIMEOUT = 3600


def _marks(family: Family) -> list[Any]:
    marks = [getattr(pytest.mark, name) for name in (family.marker, *family.marks)]
    if family.develop_env is not None:
        marks.append(pytest.mark.timeout(COLD_BUILD_TIMEOUT))
    return marks


def _cases() -> list[Any]:
    cases = []
    for family in FAMILIES:
        marks = _marks(family)
        cases.append(pytest.param(family, False, marks=marks, id=f"{family.name}-defaults"))
        cases.append(pytest.param(family, True, marks=marks, id=f"{family.name}-custom"))
    return cases


def _render(family: Family, out: Path, extra_context: dict[str, str]) -> Path:
    # cookiecutter writes each rendered hook to the temp directory and never removes
    # it (one file a render): give it a directory of its own for the call.
    scratch = tempfile.mkdtemp(prefix="plugwire-hooks-")
    saved, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        project = cookiecutter(
            str(TEMPLATES / family.name),
            no_input=True,
            extra_context=extra_context,
            output_dir=str(out),
        )
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(scratch, ignore_errors=True)
    return Path(project)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # the rendered project's own pytest config sets its path
    return env


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(("family", "custom"), _cases())
def test_template_renders_and_its_readme_installs_tests_and_lints_it(
    family: Family, custom: bool, tmp_path: Path, install_wheels: Path
) -> None:
    context = family.custom if custom else {}
    project = _render(family, tmp_path / "out", context)
    assert project.name == (family.custom_slug if custom else family.default_slug)

    # Every placeholder was rendered.
    leftovers = [
        str(path.relative_to(project))
        for path in project.rglob("*")
        if "{{" in path.name
        or (path.is_file() and re.search(r"\{\{|\{%|cookiecutter\.", path.read_text()))
    ]
    assert not leftovers, leftovers

    # A standalone project depending on the family's extra, with a README and tests.
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"plugwire[{family.extra}]' in pyproject
    readme = (project / "README.md").read_text()
    for value in context.values():
        if value in pyproject or value in readme:
            break
    else:
        assert not context, "no custom variable shows up in pyproject.toml or README.md"
    assert list((project / "tests").glob("test_*.py"))
    # The Develop block works on a fresh machine as written: pip finds plugwire in the
    # wheelhouse that scripts/wheelhouse.sh builds (plugwire is not on the package index).
    block = _develop_block(readme)
    assert block.index("export PIP_FIND_LINKS=") < block.index("pip install -e .")
    assert "scripts/wheelhouse.sh" in block
    assert PLACEHOLDER in block

    # Run it, in the rendered project, from a user's shell (system python on PATH, no
    # workspace venv): its own venv, the install line, its pytest and its ruff.
    junit = tmp_path / "junit.xml"
    script = block.replace(PLACEHOLDER, shlex.quote(str(install_wheels)))
    env = {
        **clean_env(),
        **(family.develop_env() if family.develop_env else {}),
        "PIP_NO_INDEX": "1",  # third-party wheels fetched once per session (conftest)
        "PYTEST_ADDOPTS": f"-p no:cacheprovider --junitxml={junit}",
    }
    run = subprocess.run(
        ["bash", "-e", "-x", "-c", "PS4='+ [${SECONDS}s] '\n" + script],  # timed trace
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=family.timeout,
        check=False,
    )
    output = run.stdout[-6000:] + run.stderr[-4000:]
    assert run.returncode == 0, output

    # It ran in the project's own clean venv, with plugwire installed from the wheelhouse.
    venv_dir = project / ".venv"
    assert "include-system-site-packages = false" in (venv_dir / "pyvenv.cfg").read_text()
    probe = subprocess.run(
        [
            str(venv_dir / "bin" / "python"),
            "-c",
            "import sys, plugwire.core, importlib.metadata as m;"
            "print(sys.prefix, plugwire.core.__file__, m.version('plugwire'), sep='\\n')",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    prefix, core, version = probe.stdout.split("\n")[:3]
    assert Path(prefix) == venv_dir and Path(core).is_relative_to(venv_dir), probe.stdout
    assert version == "0.1.0"

    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= family.min_tests, (counts, output)
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, (counts, output)
    # ... and its lint step ran on the project (the block's last line).
    assert "All checks passed!" in run.stdout, output


#: What the rendered README asks the user to replace with their wheelhouse.
PLACEHOLDER = "/path/to/plugwire/wheelhouse"


def _develop_block(readme: str) -> str:
    """The first ``sh`` block of the README's "## Develop" section."""
    develop = readme[readme.index("## Develop") :]
    found = re.search(r"^```sh\n(.*?)^```", develop, flags=re.M | re.S)
    assert found, "no sh block under ## Develop"
    return found.group(1)


@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=getattr(pytest.mark, f.marker), id=f.name) for f in FAMILIES]
)
def test_template_refuses_bad_variables(family: Family, tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        _render(family, tmp_path, family.bad)
    assert not any(tmp_path.iterdir())  # nothing half-rendered is left behind


def _uv() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else [sys.executable, "-m", "uv"]


@pytest.mark.packaging
@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=getattr(pytest.mark, f.marker), id=f.name) for f in FAMILIES]
)
def test_rendered_project_builds_a_wheel(family: Family, tmp_path: Path) -> None:
    """The wheel holds the package, requires the extra and declares working entry points."""
    project = _render(family, tmp_path / "out", {})
    dist = tmp_path / "dist"
    build = _run([*_uv(), "build", "--wheel", "--out-dir", str(dist), "--quiet"], project, 300)
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = next(p.name for p in (project / "src").iterdir() if p.is_dir())
    sources = {str(p.relative_to(project / "src")) for p in (project / "src").rglob("*.py")}
    assert sources <= set(names), sorted(sources - set(names))
    info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert f"Requires-Dist: plugwire[{family.extra}]" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    targets = re.findall(r"^\S+ = ([\w.]+):(\w+)$", entry_points, flags=re.M)
    assert targets and all(t[0].split(".")[0] == package for t in targets), entry_points
    for module, attr in targets:
        base = module.replace(".", "/")  # a module, or a package's __init__
        path = base + ".py" if base + ".py" in names else base + "/__init__.py"
        assert path in names, (module, names)
        assert re.search(
            rf"^(def|class) {attr}\b", zipfile.ZipFile(wheel).read(path).decode(), re.M
        )


def _launcher(path: Path, src: Path, module: str) -> str:
    """A console-script-like launcher for ``module:main`` of a rendered (uninstalled) project."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(src)!r})\n"
        f"from {module} import main\nmain()\n"
    )
    path.chmod(0o755)
    return str(path)


@pytest.mark.interop
@pytest.mark.goplugin
def test_goplugin_template_with_upstream_go_host_and_plugin(tmp_path: Path) -> None:
    """The rendered KV plugin under go-plugin's own examples/grpc host (v1.8.0, unmodified),
    and the rendered host running that example's Go plugin."""
    from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

    project = _render(_family("goplugin"), tmp_path / "out", {})
    src = project / "src"
    plugin = _launcher(tmp_path / "bin" / "kv-plugin", src, "hello_kv_plugin.plugin")
    host = _launcher(tmp_path / "bin" / "kv-host", src, "hello_kv_plugin.host")
    go_host = build_go(
        "goplugin", "github.com/hashicorp/go-plugin/examples/grpc", name="upstream_kv_host"
    )
    go_plugin = build_go(
        "goplugin",
        "github.com/hashicorp/go-plugin/examples/grpc/plugin-go-grpc",
        name="upstream_kv_plugin",
    )

    def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        cwd.mkdir(exist_ok=True)
        return subprocess.run(
            argv,
            cwd=cwd,
            env={**_env(), **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # go-plugin's example host launches the Python plugin with `sh -c $KV_PLUGIN`.
    upstream = {"KV_PROTO": "grpc", "KV_PLUGIN": plugin}
    put = run([str(go_host), "put", "hello", "world"], tmp_path / "a", **upstream)
    assert put.returncode == 0, put.stdout + put.stderr
    assert (tmp_path / "a" / "kv_hello").read_text() == "world"
    got = run([str(go_host), "get", "hello"], tmp_path / "a", **upstream)
    assert (got.returncode, got.stdout.strip()) == (0, "world"), got.stderr

    # The rendered host launches upstream's Go plugin.
    put = run([host, "--plugin", str(go_plugin), "put", "colour", "blue"], tmp_path / "b")
    assert put.returncode == 0, put.stdout + put.stderr
    got = run([host, "--plugin", str(go_plugin), "get", "colour"], tmp_path / "b")
    assert got.returncode == 0, got.stderr
    # upstream's Go plugin stores the value with a signature of its own
    assert got.stdout.strip().splitlines()[0] == "blue"
    assert "Written from plugin-go-grpc" in got.stdout


def _family(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


@pytest.mark.interop
@pytest.mark.cipd
def test_cipd_template_under_luci_plugin_host(tmp_path: Path) -> None:
    """The rendered admission plugin launched by luci's own plugin/host (the CIPD client's
    code): admitted, refused outside the prefix, refused without the metadata."""
    from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

    from plugwire.grpc.cipd import HashAlgo, ObjectRef

    project = _render(_family("cipd"), tmp_path / "out", {})
    plugin = _launcher(
        tmp_path / "bin" / "hello-admission", project / "src", "hello_admission.plugin"
    )
    iid = ObjectRef(HashAlgo.SHA256, hashlib.sha256(b"v1").hexdigest()).instance_id
    scenario = {
        "service_url": "https://chrome-infra-packages.appspot.com",
        "plugin": [plugin],
        "metadata": {
            f"infra/tools/ok@{iid}": [{"key": "approved-by", "value": "alice"}],
            f"other/tool@{iid}": [{"key": "approved-by", "value": "bob"}],
        },
        "batches": [
            [
                {"package": "infra/tools/ok", "instance_id": iid},
                {"package": "infra/tools/unreviewed", "instance_id": iid},
                {"package": "other/tool", "instance_id": iid},
            ]
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    go_host = build_go("cipd", "./cmd/cipdhost")
    run = _run([str(go_host), str(path)], tmp_path, 120)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()][:-1]  # last: close time
    assert [(r["package"], r["code"]) for r in results] == [
        ("infra/tools/ok", "OK"),
        ("infra/tools/unreviewed", "FailedPrecondition"),
        ("other/tool", "FailedPrecondition"),
    ]
    assert "no approved-by metadata" in results[1]["message"]
    assert "only packages under infra/" in results[2]["message"]
    assert "admitting infra/tools/ok: approved-by=alice" in run.stderr  # Host.Log


@pytest.mark.interop
@pytest.mark.nri
def test_nri_template_under_upstream_adaptation(tmp_path: Path) -> None:
    """The rendered NRI plugin pre-installed under containerd/nri's own pkg/adaptation
    (started on fd 3 with its config): the merged CreateContainer adjustment."""
    from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

    project = _render(_family("nri"), tmp_path / "out", {})
    short = Path(tempfile.mkdtemp(prefix="nri-tpl-", dir="/tmp"))  # socket paths are short
    try:
        plugins, conf = short / "plugins", short / "conf.d"
        conf.mkdir()
        _launcher(plugins / "10-hello-nri-plugin", project / "src", "hello_nri_plugin.plugin")
        (conf / "hello-nri-plugin.conf").write_text("GREETING=hi\n")
        prefix = "hello-nri-plugin.nri.example.com"
        pod = {"id": "pod0", "name": "web", "annotations": {f"{prefix}/memory-limit": "268435456"}}
        commands = [
            {
                "op": "start",
                "socket": str(short / "nri.sock"),
                "plugin_path": str(plugins),
                "config_path": str(conf),
            },
            {"op": "wait_plugins", "count": 1, "timeout": 20},
            {"op": "run_pod_sandbox", "request": {"pod": pod}},
            {
                "op": "create_container",
                "request": {
                    "pod": pod,
                    "container": {"id": "c1", "pod_sandbox_id": "pod0", "name": "app"},
                },
            },
            {"op": "stop"},
        ]
        go_runtime = build_go("nri", "./cmd/nriruntime")
        stdin = "".join(json.dumps(c) + "\n" for c in commands)
        run = subprocess.run(
            [str(go_runtime)], input=stdin, capture_output=True, text=True, timeout=120, check=False
        )
        replies = [json.loads(line) for line in run.stdout.splitlines()]
        assert [r["ok"] for r in replies] == [True] * len(commands), (replies, run.stderr[-3000:])
        adjust = replies[3]["result"]["adjust"]
        assert {e["key"]: e["value"] for e in adjust["env"]} == {"GREETING": "hi"}
        assert adjust["annotations"] == {f"{prefix}/adjusted-by": "10-hello-nri-plugin"}
        assert int(adjust["linux"]["resources"]["memory"]["limit"]["value"]) == 268435456
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.terraform
def test_terraform_template_says_what_to_install_without_terraform(tmp_path: Path) -> None:
    """Without ``$TERRAFORM`` and with no ``terraform`` on PATH the rendered project's
    terraform tests skip naming what to install, and fail so under ``CI=true``; the test
    that needs no terraform still runs."""
    project = _render(_family("terraform"), tmp_path / "out", {})
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {k: v for k, v in _env().items() if k not in ("TERRAFORM", "CI")}
    env["PATH"] = str(empty)  # the pytest below runs from an absolute path

    def pytest_run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-rs", "-vv", "-p", "no:cacheprovider"],
            cwd=project,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    install = "install the terraform CLI (>= 1.14) from https://developer.hashicorp.com/"
    skipped = pytest_run()
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 passed, 6 skipped" in skipped.stdout, skipped.stdout
    assert "no terraform CLI ($TERRAFORM unset, none on PATH)" in skipped.stdout
    assert install in skipped.stdout
    failed = pytest_run(CI="true")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 passed, 6 errors" in failed.stdout, failed.stdout
    assert install in failed.stdout


def test_every_template_is_tested() -> None:
    on_disk = {p.parent.name for p in TEMPLATES.glob("*/cookiecutter.json")}
    assert on_disk == {f.name for f in FAMILIES}
    for family in FAMILIES:
        variables = json.loads((TEMPLATES / family.name / "cookiecutter.json").read_text())
        assert "project_slug" in variables
        assert set(family.custom) <= set(variables), family.name
    docs = (ROOT / "docs" / "templates.md").read_text()
    for family in FAMILIES:
        assert f"templates/{family.name}" in docs, family.name
        variables = json.loads((TEMPLATES / family.name / "cookiecutter.json").read_text())
        for name in variables:
            if not name.startswith("_"):  # cookiecutter's own settings
                assert f"`{name}`" in docs, (family.name, name)
