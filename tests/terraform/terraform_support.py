"""The real terraform CLI and the Go comparison provider, and a per-test workspace.

Both binaries are built from the Go module proxy by :func:`support.gobuild.build_go`
into ``~/.cache/plugwire/go/terraform/<key>/`` (see tests/interop/terraform/README.md):

* :func:`terraform_binary` - ``github.com/hashicorp/terraform`` at
  :data:`TERRAFORM_VERSION`, without the remote-state backends (stand-ins in
  tests/interop/terraform/stubs/); a cold build takes minutes on 2 cores.
* :func:`go_provider_binary` - ``terraform-provider-example``, the
  terraform-plugin-framework provider ``plugwire/example`` (resource ``example_thing``,
  data source ``example_echo``, function ``upper``).

:class:`Workspace` runs terraform against provider executables with nothing from the
network or the user's setup: its own ``HOME``, ``TF_CLI_CONFIG_FILE`` (dev overrides or
a filesystem mirror, never the registry), ``TF_DATA_DIR``, ``TF_IN_AUTOMATION=1`` and
``CHECKPOINT_DISABLE=1``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from support.gobuild import build_go, cache_dir

#: The terraform release the harness builds (newest served that builds on Go 1.26.8).
TERRAFORM_VERSION = "1.16.4"
#: The Go comparison provider's source address, as configs write it.
EXAMPLE_SOURCE = "plugwire/example"
#: Its full address, as ``providers schema -json`` and the state name it.
EXAMPLE_ADDRESS = "registry.terraform.io/plugwire/example"
#: Terraform's go-plugin handshake (the cookie every provider checks).
MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
#: The version a provider reports when installed from a :class:`Workspace` mirror.
MIRROR_VERSION = "0.1.0"
#: ``GOOS_GOARCH`` of this machine, as terraform names platforms.
PLATFORM = "linux_amd64" if os.uname().machine in ("x86_64", "amd64") else "linux_arm64"

Install = Literal["dev_overrides", "mirror"]

# `go build` flags of terraform's release builds: no "-dev" suffix in the version.
_TERRAFORM_LDFLAGS = "-ldflags=-s -w -X github.com/hashicorp/terraform/version.dev=no"


def terraform_binary() -> Path:
    """The terraform CLI (built once, then cached; keyed by go.mod/go.sum/stubs)."""
    return build_go(
        "terraform",
        "github.com/hashicorp/terraform",
        name="terraform",
        flags=[_TERRAFORM_LDFLAGS],
        sources=["go.mod", "go.sum", "stubs"],
        timeout=3600,
    )


# The same build with terraform's experiments allowed (``main.experimentsAllowed``, which
# terraform's release process sets only for alpha/dev builds; see terraform's
# experiments.go): the ``state_store`` block of ``terraform {}`` parses only then.
_TERRAFORM_EXPERIMENTS_LDFLAGS = _TERRAFORM_LDFLAGS + " -X main.experimentsAllowed=yes"


def terraform_experiments_binary() -> Path:
    """The terraform CLI of :func:`terraform_binary` built with experiments allowed
    (a second cached binary, keyed by its own flags; ``terraform_binary`` is unchanged)."""
    return build_go(
        "terraform",
        "github.com/hashicorp/terraform",
        name="terraform",
        flags=[_TERRAFORM_EXPERIMENTS_LDFLAGS],
        sources=["go.mod", "go.sum", "stubs"],
        timeout=3600,
    )


def go_provider_binary() -> Path:
    """The Go comparison provider ``terraform-provider-example`` (built once, cached)."""
    return build_go("terraform", "./cmd/terraform-provider-example", timeout=1800)


#: pyvider (PyPI), the other Python provider framework, for the benchmark comparison.
PYVIDER_VERSION = "0.8.1"


def pyvider_python() -> Path:
    """A Python with pyvider :data:`PYVIDER_VERSION` (from PyPI, not a plugwire
    dependency): a virtualenv made once under ``~/.cache/plugwire/pyvider/`` (keyed by
    the version and this Python's), with ``uv`` when it is on PATH, else venv + pip."""
    tag = f"{PYVIDER_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    root = cache_dir() / "pyvider" / tag
    python = root / "bin" / "python"
    done = root / ".installed"
    if done.is_file():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return python
        shutil.rmtree(root, ignore_errors=True)
        uv = shutil.which("uv")
        if uv is not None:
            steps = [
                [uv, "venv", "-q", "--python", sys.executable, str(root)],
                [
                    uv,
                    "pip",
                    "install",
                    "-q",
                    "--python",
                    str(python),
                    f"pyvider=={PYVIDER_VERSION}",
                ],
            ]
        else:
            steps = [
                [sys.executable, "-m", "venv", str(root)],
                [str(python), "-m", "pip", "install", "-q", f"pyvider=={PYVIDER_VERSION}"],
            ]
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"installing pyvider=={PYVIDER_VERSION} into {root} failed "
                    f"({' '.join(step[:3])}): {proc.stderr[-2000:]}"
                )
        done.write_text(PYVIDER_VERSION + "\n")
    return python


def required_providers(name: str = "example", source: str = EXAMPLE_SOURCE) -> str:
    """The ``terraform { required_providers { ... } }`` block for one provider."""
    return (
        f'terraform {{\n  required_providers {{\n    {name} = {{ source = "{source}" }}\n  }}\n}}\n'
    )


class TerraformError(AssertionError):
    """A terraform command that was expected to succeed failed (or the reverse)."""

    def __init__(self, result: TfResult, *, expected: str) -> None:
        super().__init__(
            f"terraform {shlex.join(result.args)} (step {result.args[0]!r}) in {result.cwd}: "
            f"expected {expected}, seen exit {result.returncode} after {result.seconds:.1f}s\n"
            f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n"
            f"--- stderr (tail) ---\n{result.stderr[-3000:]}"
        )
        self.result = result


@dataclass(frozen=True)
class TfResult:
    """One finished terraform command."""

    args: tuple[str, ...]
    cwd: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout and stderr together (terraform prints diagnostics on stderr)."""
        return self.stdout + self.stderr

    def json(self) -> Any:
        """stdout parsed as JSON (for ``-json`` commands)."""
        return json.loads(self.stdout)


class Workspace:
    """A terraform working directory wired to provider executables, isolated per test.

    ``providers`` maps a source address (``"plugwire/example"``) to the provider: a path
    to an executable, or a command (``[sys.executable, "-m", "my_provider"]``) which is
    wrapped in a small shell script. ``install``:

    * ``"dev_overrides"``: terraform runs the provider from a dev override (no
      ``terraform init`` needed; terraform warns that overrides are in effect);
    * ``"mirror"``: the provider is laid out in a filesystem mirror as version
      :data:`MIRROR_VERSION`, and :meth:`init` installs it from there like a release.

    Either way the CLI config allows no other installation source (the empty-by-default
    mirror stands in for ``direct``), so nothing is fetched from the network.
    """

    def __init__(
        self,
        cli: Path,
        root: Path,
        providers: Mapping[str, Path | Sequence[str]],
        *,
        install: Install = "dev_overrides",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.cli = cli
        self.root = root
        self.dir = root / "work"
        self.home = root / "home"
        self.mirror = root / "mirror"
        self.install = install
        for d in (self.dir, self.home, self.mirror):
            d.mkdir(parents=True, exist_ok=True)
        overrides: dict[str, Path] = {}
        for source, provider in providers.items():
            namespace, type_name = _split_source(source)
            if install == "dev_overrides":
                target = root / "providers" / namespace / type_name
                target.mkdir(parents=True, exist_ok=True)
                _place(provider, target / f"terraform-provider-{type_name}")
                overrides[source] = target
            else:
                host = "registry.terraform.io"
                target = self.mirror / host / namespace / type_name / MIRROR_VERSION / PLATFORM
                target.mkdir(parents=True, exist_ok=True)
                _place(provider, target / f"terraform-provider-{type_name}_v{MIRROR_VERSION}")
        self.config_file = root / "terraform.rc"
        self.config_file.write_text(_cli_config(overrides, self.mirror))
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TF_CLI_CONFIG_FILE": str(self.config_file),
            "TF_DATA_DIR": str(root / "tfdata"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_PLUGIN_CACHE_DIR": "",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }
        for var in ("PLUGWIRE_CACHE", "XDG_CACHE_HOME", "LANG", "LC_ALL"):
            if var in os.environ:
                self.env[var] = os.environ[var]
        self.env.update(extra_env or {})

    # -- files -----------------------------------------------------------------------

    def write(self, hcl: str, name: str = "main.tf") -> Path:
        """Write a configuration file into the working directory."""
        path = self.dir / name
        path.write_text(hcl)
        return path

    @property
    def state_file(self) -> Path:
        return self.dir / "terraform.tfstate"

    # -- commands --------------------------------------------------------------------

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 180.0,
        env: Mapping[str, str] | None = None,
    ) -> TfResult:
        """Run ``terraform <args>`` in the working directory; with ``check`` a non-zero
        exit raises :class:`TerraformError` (showing the output)."""
        started = time.monotonic()
        proc = subprocess.run(
            [str(self.cli), *args],
            cwd=self.dir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = TfResult(
            tuple(args), self.dir, proc.returncode, proc.stdout, proc.stderr,
            time.monotonic() - started,
        )  # fmt: skip
        if check and not result.ok:
            raise TerraformError(result, expected="exit 0")
        return result

    def fails(self, *args: str, timeout: float = 180.0) -> TfResult:
        """Run a command that must fail (exit non-zero); return its result."""
        result = self.run(*args, check=False, timeout=timeout)
        if result.ok:
            raise TerraformError(result, expected="a non-zero exit")
        return result

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``terraform <args>`` without waiting (e.g. to interrupt it with SIGINT);
        stdout and stderr are pipes, stdin is closed."""
        return subprocess.Popen(
            [str(self.cli), *args],
            cwd=self.dir,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def init(self, *extra: str) -> TfResult:
        return self.run("init", "-input=false", "-no-color", *extra)

    def validate(self) -> TfResult:
        return self.run("validate", "-no-color")

    def plan(self, *extra: str, check: bool = True) -> TfResult:
        return self.run("plan", "-input=false", "-no-color", *extra, check=check)

    def plan_json(self, *extra: str) -> dict[str, Any]:
        """``plan -out`` then ``show -json`` of that plan (resource_changes, ...)."""
        self.plan("-out=tfplan", *extra)
        data: dict[str, Any] = self.run("show", "-json", "-no-color", "tfplan").json()
        return data

    def has_changes(self, *extra: str) -> bool:
        """``plan -detailed-exitcode``: False for no changes, True for changes."""
        result = self.run(
            "plan", "-input=false", "-no-color", "-detailed-exitcode", *extra, check=False
        )
        if result.returncode not in (0, 2):
            raise TerraformError(result, expected="exit 0 (no changes) or 2 (changes)")
        return result.returncode == 2

    def apply(self, *extra: str, check: bool = True) -> TfResult:
        return self.run("apply", "-input=false", "-no-color", "-auto-approve", *extra, check=check)

    def destroy(self, *extra: str, check: bool = True) -> TfResult:
        return self.run(
            "destroy", "-input=false", "-no-color", "-auto-approve", *extra, check=check
        )

    def show_json(self) -> dict[str, Any]:
        """The current state as ``terraform show -json`` renders it."""
        data: dict[str, Any] = self.run("show", "-json", "-no-color").json()
        return data

    def resources(self) -> dict[str, dict[str, Any]]:
        """Root-module resources in the state: address -> attribute values."""
        root = self.show_json().get("values", {}).get("root_module", {})
        return {r["address"]: r["values"] for r in root.get("resources", [])}

    def outputs(self) -> dict[str, Any]:
        """``terraform output -json``: name -> value."""
        data = self.run("output", "-json", "-no-color").json()
        return {name: o["value"] for name, o in data.items()}

    def providers_schema(self) -> dict[str, Any]:
        """``terraform providers schema -json``."""
        data: dict[str, Any] = self.run("providers", "schema", "-json").json()
        return data


class WorkspaceFactory(Protocol):
    """The ``terraform_workspace`` fixture: one isolated :class:`Workspace` per call."""

    def __call__(
        self,
        provider: Path | Sequence[str],
        *,
        source: str = EXAMPLE_SOURCE,
        install: Install = "dev_overrides",
        env: Mapping[str, str] | None = None,
    ) -> Workspace: ...


# -- the ``ops`` example provider (actions, list resources) under the CLI -----------------

#: plugwire's ``ops`` example provider, as the command terraform launches.
OPS_PROVIDER = [sys.executable, "-m", "plugwire.grpc.terraform.examples.ops"]
#: Its source address, as configs write it.
OPS_SOURCE = "plugwire/ops"


def ops_workspace(cli: Path, root: Path, main: str, *, protocol: int, log: Path) -> Workspace:
    """A :class:`Workspace` under ``root`` running :data:`OPS_PROVIDER` from a dev
    override with ``cli``: it serves ``protocol`` only (5 or 6, ``OPS_PROTOCOL``) and
    appends a line per thing it does to ``log`` (``OPS_LOG``; read it with
    :func:`log_lines`); ``main`` is written as main.tf."""
    env = {"OPS_LOG": str(log), "OPS_PROTOCOL": str(protocol)}
    workspace = Workspace(cli, root, {OPS_SOURCE: OPS_PROVIDER}, extra_env=env)
    workspace.write(main)
    return workspace


def log_lines(path: Path) -> list[str]:
    """The lines a provider logged to ``path``; none when it never wrote the file."""
    return path.read_text().splitlines() if path.exists() else []


# -- helpers -----------------------------------------------------------------------------


def _split_source(source: str) -> tuple[str, str]:
    parts = source.split("/")
    if len(parts) == 3:
        parts = parts[1:]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"provider source {source!r}: expected NAMESPACE/TYPE")
    return parts[0], parts[1]


def _place(provider: Path | Sequence[str], target: Path) -> None:
    """Put the provider at ``target``: a symlink to an executable, or a wrapper script
    that execs a command."""
    if target.exists() or target.is_symlink():
        target.unlink()
    if isinstance(provider, Path):
        if not os.access(provider, os.X_OK):
            raise ValueError(f"provider {provider} is not an executable file")
        target.symlink_to(provider.resolve())
        return
    argv = list(provider)
    if not argv:
        raise ValueError("provider command is empty")
    target.write_text(f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')
    target.chmod(0o755)


def _hcl_string(value: str) -> str:
    return json.dumps(value)  # HCL string escapes are a superset of JSON's


def _cli_config(overrides: Mapping[str, Path], mirror: Path) -> str:
    lines = ["provider_installation {"]
    if overrides:
        lines.append("  dev_overrides {")
        lines += [f"    {_hcl_string(s)} = {_hcl_string(str(d))}" for s, d in overrides.items()]
        lines.append("  }")
    # The only other installation source: a local mirror (no registry, no network).
    lines += ["  filesystem_mirror {", f"    path = {_hcl_string(str(mirror))}", "  }", "}"]
    return "\n".join(lines) + "\n"
