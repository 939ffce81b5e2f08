"""Interop: upstream's default validator, hosted by plugwire's runtime.

``tests/interop/nri/cmd/defaultvalidator`` runs containerd/nri's own
``plugins/default-validator`` code (wired through its ``builtin`` package) as an NRI
plugin on upstream's ``pkg/stub``. Two Go adjusting plugins (``cmd/nriplugin
-security``) add OCI hooks, seccomp policies, namespaces and sysctls as each
container's annotations ask. For every case the validator's verdict (the merged
adjustment, or the rejection) under plugwire's :class:`Runtime` must equal the one
under upstream's adaptation hosting the same plugins, both externally started and
pre-installed on fd 3 with the validator's configuration file; and, pre-installed,
also the one of upstream's *builtin* default validator (``WithDefaultValidator``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from nri_support import (
    GoRuntime,
    external_processes,
    from_dict,
    go_plugin_argv,
    install_plugins,
    open_go_runtime,
    to_dict,
)

from plugwire.ttrpc.nri import PluginRejectedError, Runtime
from plugwire.ttrpc.nri.api import pb

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

VALIDATOR = "00-default-validator"
#: upstream's DefaultValidatorConfig (its yaml tags)
CONFIG = """\
enable: true
rejectOCIHookAdjustment: true
rejectRuntimeDefaultSeccompAdjustment: false
rejectUnconfinedSeccompAdjustment: true
rejectCustomSeccompAdjustment: true
rejectNamespaceAdjustment: true
rejectSysctlAdjustment: true
requiredPlugins: [a]
tolerateMissingPluginsAnnotation: tolerate-missing.plugwire.io
"""
#: adjusting plugins: name -> flags (command line when external, config when pre-installed)
ADJUSTERS: dict[str, list[str]] = {
    "10-a": ["-security", "-events", "createcontainer", "-env", "FROM_A=1"],
    "20-b": ["-security", "-events", "createcontainer"],
}
REQUIRED = "required-plugins.noderesource.dev/container."
TOLERATE = "tolerate-missing.plugwire.io/container."


def _seccomp(profile: str) -> dict[str, Any]:
    return {"seccomp_profile": {"profile_type": profile, "localhost_ref": "p.json"}}


#: case -> (container annotations, container linux, pod annotations, expected verdict
#: prefix). The expectations pin the validator's behaviour so that agreement between
#: the runtimes cannot be vacuous.
CASES: dict[str, tuple[dict[str, str], dict[str, Any], dict[str, str], str]] = {
    "plain": ({}, {}, {}, "allowed"),
    "hook": (
        {"10-a.plugwire.io/hook": "/bin/true"},
        {},
        {},
        'rejected: validation error: plugin "10-a" attempted restricted OCI hook injection',
    ),
    "hooks": (
        {"10-a.plugwire.io/hook": "/bin/a", "20-b.plugwire.io/hook": "/bin/b"},
        {},
        {},
        'rejected: validation error: plugins "10-a,20-b" attempted restricted OCI hook injection',
    ),
    "seccomp-default": (
        {"20-b.plugwire.io/seccomp": "SCMP_ACT_ERRNO"},
        _seccomp("RUNTIME_DEFAULT"),
        {},
        "allowed",
    ),
    "seccomp-unconfined": (
        {"20-b.plugwire.io/seccomp": "SCMP_ACT_ERRNO"},
        {},
        {},
        "rejected: validation error: plugin 20-b attempted restricted  unconfined seccomp",
    ),
    "seccomp-custom": (
        {"20-b.plugwire.io/seccomp": "SCMP_ACT_ERRNO"},
        _seccomp("LOCALHOST"),
        {},
        "rejected: validation error: plugin 20-b attempted restricted  custom seccomp",
    ),
    "namespace": (
        {"10-a.plugwire.io/namespace": "network=/var/run/netns/x"},
        {},
        {},
        'rejected: validation error: attempted restricted namespace adjustment by plugin(s) "10-a"',
    ),
    "sysctl": (
        {"20-b.plugwire.io/sysctl": "net.ipv4.ip_forward=1"},
        {},
        {},
        "rejected: validation error: attempted restricted sysctl adjustment by plugin(s) 20-b",
    ),
    "required-missing": (
        {},
        {},
        {REQUIRED + "c-required-missing": "[zz]"},
        'rejected: validation error: required plugin "zz" not present',
    ),
    "required-present": ({}, {}, {REQUIRED + "c-required-present": "[b, 10-a]"}, "allowed"),
    "tolerated": (
        {},
        {},
        {REQUIRED + "c-tolerated": "[zz]", TOLERATE + "c-tolerated": "true"},
        "allowed",
    ),
    "bad-toleration": (
        {},
        {},
        {TOLERATE + "c-bad-toleration": "maybe"},
        'rejected: invalid tolerate-missing.plugwire.io annotation "maybe"',
    ),
    "hook-and-sysctl": (
        {"10-a.plugwire.io/hook": "/bin/a", "10-a.plugwire.io/sysctl": "kernel.shmmax=1"},
        {},
        {},
        'rejected: validation error: plugin "10-a" attempted restricted OCI hook',
    ),
}

POD: dict[str, Any] = {
    "id": "pod0",
    "name": "pod0",
    "namespace": "default",
    "annotations": {k: v for _, _, pod_ann, _ in CASES.values() for k, v in pod_ann.items()},
}


def container(case: str) -> dict[str, Any]:
    annotations, linux, _, _ = CASES[case]
    ctr: dict[str, Any] = {"id": f"c-{case}", "pod_sandbox_id": "pod0", "name": f"c-{case}"}
    if annotations:
        ctr["annotations"] = annotations
    if linux:
        ctr["linux"] = linux
    return ctr


Verdicts = dict[str, tuple[str, Any]]


async def verdicts_go(rt: GoRuntime) -> Verdicts:
    out: Verdicts = {}
    for case in CASES:
        reply = await rt.cmd("create_container", request={"pod": POD, "container": container(case)})
        out[case] = ("allowed", reply["result"]) if reply["ok"] else ("rejected", reply["error"])
    return out


async def verdicts_py(rt: Runtime) -> Verdicts:
    pod = from_dict(pb.PodSandbox, POD)
    out: Verdicts = {}
    for case in CASES:
        ctr = from_dict(pb.Container, container(case))
        try:
            out[case] = ("allowed", to_dict(await rt.create_container(pod, ctr)))
        except PluginRejectedError as exc:
            assert exc.peer == VALIDATOR
            out[case] = ("rejected", exc.message)
    return out


def check_expectations(got: Verdicts) -> None:
    """The verdicts say what upstream's validator is documented to decide."""
    for case, (verdict, detail) in got.items():
        expected = CASES[case][3]
        if expected == "allowed":
            assert verdict == "allowed", (case, detail)
            continue
        assert verdict == "rejected", (case, detail)
        prefix = f'validator "{VALIDATOR}" rejected container adjustment, reason: '
        assert detail.startswith(prefix), (case, detail)
        reason = expected.removeprefix("rejected:").strip()
        assert detail.removeprefix(prefix).startswith(reason), (case, detail)
    # the adjusting plugins did adjust what the validator allowed
    assert {"key": "FROM_A", "value": "1"} in got["plain"][1]["adjust"]["env"]
    assert got["seccomp-default"][1]["adjust"]["linux"]["seccomp_policy"] == {
        "default_action": "SCMP_ACT_ERRNO"
    }


def external(
    go_plugin: Path, go_validator: Path, socket: Path, conf: Path
) -> AbstractAsyncContextManager[None]:
    """The validator and the adjusters started by the test, dialling ``socket``."""
    argvs = {VALIDATOR: [str(go_validator), "-socket", str(socket), "-config", str(conf)]}
    for name, flags in ADJUSTERS.items():
        argvs[name] = go_plugin_argv(go_plugin, socket, name, flags)
    return external_processes(argvs)


def install(go_plugin: Path, go_validator: Path | None, root: Path) -> tuple[Path, Path]:
    """Pre-install the adjusters (and the validator) with their config files."""
    plugins = {name: (go_plugin, " ".join(flags) + "\n") for name, flags in ADJUSTERS.items()}
    if go_validator is not None:
        plugins[VALIDATOR] = (go_validator, CONFIG)
    return install_plugins(root, plugins)


async def test_external_default_validator_decides_like_upstream(
    go_runtime: GoRuntime, go_plugin_bin: Path, go_validator_bin: Path, sockdir: Path
) -> None:
    conf = sockdir / "validator.yaml"
    conf.write_text(CONFIG)
    go_sock = sockdir / "go" / "nri.sock"
    await go_runtime.ok("start", socket=str(go_sock))
    async with external(go_plugin_bin, go_validator_bin, go_sock, conf):
        await go_runtime.ok("wait_plugins", count=3, timeout=20)
        expected = await verdicts_go(go_runtime)

    py_sock = sockdir / "py" / "nri.sock"
    async with (
        Runtime("plugwire", "0.1", socket_path=py_sock) as rt,
        external(go_plugin_bin, go_validator_bin, py_sock, conf),
    ):
        infos = await rt.wait_for_plugins(3, timeout=20)
        assert [p.name for p in infos] == [VALIDATOR, *ADJUSTERS]
        assert all(p.external for p in infos)
        got = await verdicts_py(rt)
    check_expectations(expected)
    assert got == expected


async def test_preinstalled_default_validator_decides_like_upstream_builtin(
    go_runtime_bin: Path, go_plugin_bin: Path, go_validator_bin: Path, sockdir: Path
) -> None:
    # upstream's adaptation: the validator pre-installed, and as its builtin plugin
    plugins, conf = install(go_plugin_bin, go_validator_bin, sockdir / "go")
    async with open_go_runtime(go_runtime_bin, sockdir / "go.log") as go:
        await go.ok(
            "start",
            socket=str(sockdir / "go" / "nri.sock"),
            plugin_path=str(plugins),
            config_path=str(conf),
        )
        await go.ok("wait_plugins", count=3, timeout=20)
        expected = await verdicts_go(go)
    plugins, conf = install(go_plugin_bin, None, sockdir / "builtin")
    async with open_go_runtime(go_runtime_bin, sockdir / "builtin.log") as go:
        await go.ok(
            "start",
            socket=str(sockdir / "builtin" / "nri.sock"),
            plugin_path=str(plugins),
            config_path=str(conf),
            default_validator=CONFIG,
        )
        await go.ok("wait_plugins", count=3, timeout=20)
        builtin = await verdicts_go(go)

    plugins, conf = install(go_plugin_bin, go_validator_bin, sockdir / "py")
    async with Runtime(
        "plugwire", "0.1", socket_path=None, listen=False, plugin_path=plugins, config_path=conf
    ) as rt:
        infos = await rt.wait_for_plugins(3, timeout=20)
        assert [p.name for p in infos] == [VALIDATOR, *ADJUSTERS]
        assert not any(p.external for p in infos)
        got = await verdicts_py(rt)
    check_expectations(builtin)
    assert expected == builtin
    assert got == expected
