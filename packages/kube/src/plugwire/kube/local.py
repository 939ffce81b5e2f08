"""A real local Kubernetes control plane: ``plugwire kube up``, ``plugwire demo --kube-local``.

The same control plane the test suite runs (``tests/support/kubecluster.py``): etcd,
kube-apiserver, kube-controller-manager and kube-scheduler from the upstream Go
modules, plus the kwok controller managing one fake node, all linked into one
multi-call binary (``kubeplane``, from ``tests/interop/kube/cmd/kubeplane``), every
component on 127.0.0.1 with throwaway certificates. :class:`PodRuntime` is the node's
"container runtime": it runs the containers of pods bound to the node as local
processes (an image name maps to a local command) and gives kwok their logs and port
forwards, so ``pods/log`` and ``pods/portforward`` reach them as they would reach a
container through a kubelet.

The binary: ``$PLUGWIRE_KUBEPLANE``; else the build cache the tests fill
(``$PLUGWIRE_CACHE`` or ``~/.cache/plugwire``, ``go/kube/<key>/kubeplane``, the key
hashing the Go version and the harness sources); else, in a source checkout with Go
installed, it is built there (minutes, once). Every process is spawned through
:class:`plugwire.core.process.PluginProcess` and dies with its host.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import socket
import ssl
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import PlugwireError
from plugwire.core.process import PluginProcess, which

from ._pki import PKI

__all__ = [
    "LocalCluster",
    "LocalClusterError",
    "PodRuntime",
    "cache_dir",
    "find_kubeplane",
]

_log = logging.getLogger("plugwire.kube.local")

NODE_NAME = "kwok-node-0"
KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"
SERVICE_CIDR = "10.96.0.0/16"
UP_COMMAND = "plugwire demo --kube-local"

Progress = Callable[[str], None]


class LocalClusterError(PlugwireError):
    """The local control plane cannot be started here (no binary, a component died)."""


def cache_dir() -> Path:
    """``$PLUGWIRE_CACHE`` or ``$XDG_CACHE_HOME/plugwire`` (``~/.cache/plugwire``)."""
    root = os.environ.get("PLUGWIRE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "plugwire"
    )
    return Path(root)


def _sources() -> Path | None:
    """``tests/interop/kube`` of a source checkout (from the cwd or this file upward)."""
    env = os.environ.get("PLUGWIRE_KUBE_SOURCES")
    if env:
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in [start, *start.parents]:
            candidate = parent / "tests" / "interop" / "kube"
            if (candidate / "go.mod").is_file():
                return candidate
    return None


def _source_digest(module: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(module.rglob("*")):
        if path.is_file() and path.suffix in {".go", ".mod", ".sum", ".proto"}:
            h.update(str(path.relative_to(module)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


async def _run(argv: Sequence[str], *, env: dict[str, str], name: str, cwd: Path | None = None,
               timeout: float = 60) -> tuple[int, str]:  # fmt: skip
    lines: list[str] = []
    proc = PluginProcess(
        argv,
        env=env,
        name=name,
        cwd=cwd,
        merge_stderr=True,
        on_output=lambda chunk: lines.append(chunk.decode(errors="replace")),
    )
    with anyio.fail_after(timeout):
        async with proc:
            status = await proc.wait()
    return status, "".join(lines)


async def find_kubeplane(*, build: bool = True, progress: Progress | None = None) -> Path:
    """The kubeplane binary (see the module docstring); raises :class:`LocalClusterError`
    naming what is missing."""
    env = os.environ.get("PLUGWIRE_KUBEPLANE")
    if env:
        return Path(env)
    sources = _sources()
    go = which("go")
    if sources is not None and go is not None:
        _status, out = await _run([str(go), "env", "GOVERSION"], env=dict(os.environ), name="go")
        key = hashlib.sha256(
            "\0".join([out.strip(), _source_digest(sources), "./cmd/kubeplane"]).encode()
        ).hexdigest()[:16]
        binary = cache_dir() / "go" / "kube" / key / "kubeplane"
        if binary.is_file():
            return binary
        if build:
            return await _build(go, sources, binary, progress)
    cached = sorted(
        (cache_dir() / "go" / "kube").glob("*/kubeplane"), key=lambda p: p.stat().st_mtime
    )
    if cached:
        return cached[-1]
    raise LocalClusterError(
        "no kubeplane binary",
        step="find kubeplane",
        expected="$PLUGWIRE_KUBEPLANE, a cached build under "
        f"{cache_dir() / 'go' / 'kube'}, or a source checkout with Go installed",
        seen=f"sources={sources}, go={go}",
    )


async def _build(go: Path, sources: Path, binary: Path, progress: Progress | None) -> Path:
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.parent / ".kubeplane.tmp"
    env = dict(os.environ, CGO_ENABLED=os.environ.get("CGO_ENABLED", "0"))
    env.setdefault("GOFLAGS", "-mod=mod -buildvcs=false")
    if progress:
        progress(f"building kubeplane (etcd, kube-apiserver, kwok) into {binary.parent}")
    started = time.monotonic()

    async def ticker() -> None:
        while True:
            await anyio.sleep(15)
            if progress:
                progress(f"  still building... {time.monotonic() - started:.0f} s")

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        status, out = await _run(
            [str(go), "build", "-trimpath", "-o", str(tmp), "./cmd/kubeplane"],
            env=env,
            name="go-build",
            cwd=sources,
            timeout=3600,
        )
        tg.cancel_scope.cancel()
    if status != 0:
        raise LocalClusterError("go build ./cmd/kubeplane failed", step="build", seen=out[-3000:])
    tmp.rename(binary)
    (binary.parent / "kubeplane.buildtime").write_text(f"{time.monotonic() - started:.1f}\n")
    return binary


# ---------------------------------------------------------------------------- certs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- cluster


def _create_crd(ext: Any, doc: Any) -> None:
    ext.create_custom_resource_definition(doc, _request_timeout=10)


class _Component:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab", buffering=0)  # noqa: SIM115 (closed in close)
        self.proc = PluginProcess(
            argv,
            env=dict(os.environ),
            name=name,
            merge_stderr=True,
            on_output=self._write,
        )

    def _write(self, chunk: bytes) -> None:
        self._log.write(chunk)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.proc.done.is_set():
            raise LocalClusterError(
                f"{self.name} exited with status {self.proc.returncode}",
                step=f"start {self.name}",
                seen=self.tail(),
            )

    def close(self) -> None:
        self._log.close()


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback.

    ``async with LocalCluster(progress=print) as cluster:`` starts everything (and the
    :class:`PodRuntime`); ``cluster.kubeconfig`` is an admin kubeconfig file. Leaving
    the block stops every component (SIGTERM, then SIGKILL) and removes the work
    directory unless ``keep``.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        binary: Path | None = None,
        progress: Progress | None = None,
        keep: bool = False,
        timeout: float = 180.0,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="plugwire-kube-"))
        self.binary = binary
        self.progress = progress or (lambda _msg: None)
        self.keep = keep
        self.timeout = timeout
        self.components: list[_Component] = []
        self.server = ""
        self.kubeconfig = self.workdir / "kubeconfig-admin.yaml"
        self.runtime: PodRuntime | None = None
        self.timings: dict[str, float] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> LocalCluster:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._start(self._tg)
        except BaseException as exc:
            await self._stop()
            await self._tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stop()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(*exc)

    async def _component(self, tg: anyio.abc.TaskGroup, name: str, *args: str) -> _Component:
        assert self.binary is not None
        comp = _Component(name, [str(self.binary), name, *args], self.workdir / f"{name}.log")
        self.components.append(comp)
        await comp.proc.start(tg)
        return comp

    async def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            for comp in self.components:
                comp.check_alive()
            try:
                if await anyio.to_thread.run_sync(check):
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {c.name}:\n{c.tail()}" for c in self.components)
                raise LocalClusterError(
                    f"timed out after {timeout:.0f} s waiting for {what}", seen=tails
                )
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    async def _start(self, tg: anyio.abc.TaskGroup) -> None:
        t0 = time.monotonic()
        if self.binary is None:
            self.binary = await find_kubeplane(progress=self.progress)
        self.timings["binary"] = time.monotonic() - t0
        self.progress(f"control plane binary {self.binary}")
        t1 = time.monotonic()
        pki = PKI(self.workdir / "pki")
        api_crt, api_key = pki.issue(
            "apiserver",
            common_name="kube-apiserver",
            server=True,
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            ips=["127.0.0.1", "10.96.0.1"],
        )
        kwok_crt, kwok_key = pki.issue(
            "kubelet", common_name=f"system:node:{NODE_NAME}", server=True, ips=["127.0.0.1"]
        )
        admin = pki.issue("admin", common_name="admin", organizations=["system:masters"])
        kubelet_client = pki.issue(
            "apiserver-kubelet",
            common_name="kube-apiserver-kubelet-client",
            organizations=["system:masters"],
        )
        sa_key = pki.service_account_key()
        etcd_port, etcd_peer, api_port, kwok_port = (_free_port() for _ in range(4))
        self.server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig(pki.ca_path, *admin)
        assets = self.workdir / "kwok"
        status, out = await _run(
            [str(self.binary), "kwok-assets", str(assets)], env=dict(os.environ), name="kwok-assets"
        )
        if status != 0:
            raise LocalClusterError("kubeplane kwok-assets failed", step="assets", seen=out)

        self.progress("starting etcd")
        await self._component(
            tg,
            "etcd",
            "--name=node0",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=node0=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        )

        def etcd_ok() -> bool:
            url = f"http://127.0.0.1:{etcd_port}/health"
            with urllib.request.urlopen(url, timeout=2) as r:
                return b"true" in r.read()

        await self._wait("etcd /health", etcd_ok, 30)
        self.timings["etcd"] = time.monotonic() - t1
        self.progress("starting kube-apiserver")
        await self._component(
            tg,
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={api_crt}",
            f"--tls-private-key-file={api_key}",
            f"--client-ca-file={pki.ca_path}",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-certificate-authority={pki.ca_path}",
            f"--kubelet-client-certificate={kubelet_client[0]}",
            f"--kubelet-client-key={kubelet_client[1]}",
            "--kubelet-preferred-address-types=InternalIP",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--v=1",
        )
        ctx = ssl.create_default_context(cafile=str(pki.ca_path))
        ctx.load_cert_chain(*admin)

        def readyz() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=3) as r:
                return bool(r.status == 200)

        await self._wait("kube-apiserver /readyz", readyz, self.timeout)
        self.timings["apiserver"] = time.monotonic() - t1
        kc = str(self.kubeconfig)
        self.progress("starting kube-controller-manager, kube-scheduler, kwok")
        await self._component(
            tg,
            "kube-controller-manager",
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            f"--root-ca-file={pki.ca_path}",
            f"--service-account-private-key-file={sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=false",
            "--v=1",
        )
        await self._component(
            tg,
            "kube-scheduler",
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        )
        api = self.api_client()
        await self._apply_crds(api, assets / "crds.yaml")
        await self._component(
            tg,
            "kwok",
            f"--kubeconfig={kc}",
            f"--config={assets / 'stages.yaml'}",
            f"--tls-cert-file={kwok_crt}",
            f"--tls-private-key-file={kwok_key}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            f"--node-name={NODE_NAME}",
            f"--node-port={kwok_port}",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-lease-duration-seconds=40",
            "--enable-crds=Logs,PortForward",
        )
        await anyio.to_thread.run_sync(self._create_node, api)
        self.progress("waiting for the node and the default ServiceAccount")
        await self._wait_ready(api)
        self.timings["ready"] = time.monotonic() - t1
        self.runtime = PodRuntime(self)
        await tg.start(self.runtime.run)
        self.progress(f"control plane ready at {self.server} in {time.monotonic() - t0:.1f} s")

    async def _stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None
        for comp in reversed(self.components):
            with anyio.CancelScope(shield=True):
                try:
                    await comp.proc.terminate(5.0)
                except Exception as exc:  # pragma: no cover - best effort
                    _log.debug("stopping %s: %r", comp.name, exc)
            comp.close()
        self.components.clear()
        if self._own_workdir and not self.keep:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)

    def _write_kubeconfig(self, ca: Path, crt: Path, key: Path) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "plugwire",
                    "cluster": {"server": self.server, "certificate-authority": str(ca)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(crt), "client-key": str(key)},
                }
            ],
            "contexts": [
                {
                    "name": "admin",
                    "context": {"cluster": "plugwire", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "admin",
        }
        self.kubeconfig.write_text(json.dumps(doc, indent=2))  # JSON is YAML
        self.kubeconfig.chmod(0o600)

    def api_client(self) -> Any:
        """A kubernetes ``ApiClient`` for the admin user."""
        from kubernetes import config

        return config.new_client_from_config(  # type: ignore[no-untyped-call,unused-ignore]
            config_file=str(self.kubeconfig)
        )

    async def _apply_crds(self, api: Any, path: Path) -> None:
        import yaml  # type: ignore[import-untyped,unused-ignore]
        from kubernetes import client

        ext = client.ApiextensionsV1Api(api)
        names = []
        text = await anyio.Path(path).read_text()
        for doc in yaml.safe_load_all(text):
            if doc:
                await anyio.to_thread.run_sync(_create_crd, ext, doc)
                names.append(doc["metadata"]["name"])

        def established() -> bool:
            for name in names:
                crd = ext.read_custom_resource_definition(name, _request_timeout=5)
                conds = {c.type: c.status for c in ((crd.status and crd.status.conditions) or [])}
                if conds.get("Established") != "True":
                    return False
            return True

        await self._wait("kwok CRDs established", established, 30)

    def _create_node(self, api: Any) -> None:
        from kubernetes import client

        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
        }
        body = client.V1Node.from_dict(node)
        assert body is not None
        client.CoreV1Api(api).create_node(body, _request_timeout=10)

    async def _wait_ready(self, api: Any) -> None:
        from kubernetes import client

        core = client.CoreV1Api(api)

        def node_ready() -> bool:
            status = core.read_node(NODE_NAME, _request_timeout=5).status
            conditions = (status.conditions if status else None) or []
            return any(c.type == "Ready" and c.status == "True" for c in conditions)

        def default_sa() -> bool:
            core.read_namespaced_service_account("default", "default", _request_timeout=5)
            return True

        await self._wait("the kwok node to be Ready", node_ready, self.timeout)
        await self._wait("the default ServiceAccount", default_sa, self.timeout)


# ---------------------------------------------------------------------------- pod runtime


class _Container:
    def __init__(self, name: str, log_path: Path, proc: PluginProcess | None) -> None:
        self.name = name
        self.log = open(log_path, "ab", buffering=0)  # noqa: SIM115 (closed in stop)
        self.proc = proc

    def writer(self, stream: str) -> Callable[[str], None]:
        return lambda line: self.write(stream, line)

    def write(self, stream: str, line: str) -> None:
        # The CRI log format containerd writes and kubelet/kwok read back.
        ts = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not self.log.closed:
            self.log.write(f"{ts} {stream} F {line.rstrip()}\n".encode())

    async def stop(self) -> None:
        if self.proc is not None:
            with anyio.CancelScope(shield=True):
                await self.proc.terminate(3.0)
        self.log.close()


class PodRuntime:
    """Runs the containers of pods bound to the local node as local processes.

    ``images`` maps an image name to the argv of its entrypoint (a container's
    ``command`` replaces it, its ``args`` are appended). Unknown images get no process
    (kwok still reports the pod Running). Each pod's first container port is served
    on a loopback port of its own (``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT`` are set to
    it) and kwok forwards the declared port there.
    """

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.images: dict[str, list[str]] = {}
        self.started: list[str] = []
        self._pods: dict[str, list[_Container]] = {}
        self._logdir = cluster.workdir / "pods"
        self._logdir.mkdir(exist_ok=True)
        self._stopped = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.cluster.api_client())
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            while not self._stopped.is_set():
                try:
                    pods = await anyio.to_thread.run_sync(
                        lambda: (
                            core.list_pod_for_all_namespaces(
                                field_selector=f"spec.nodeName={NODE_NAME}", _request_timeout=5
                            ).items
                        )
                    )
                    await self._sync(pods)
                except Exception as exc:
                    _log.debug("pod runtime: %r", exc)
                with anyio.move_on_after(0.3):
                    await self._stopped.wait()
            tg.cancel_scope.cancel()

    async def _sync(self, pods: list[Any]) -> None:
        live = set()
        for pod in pods:
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            if pod.metadata.deletion_timestamp is not None:
                continue
            live.add(key)
            if key not in self._pods:
                self._pods[key] = []
                try:
                    self._pods[key] = await self._launch(pod)
                    self.started.append(key)
                except Exception as exc:
                    _log.warning("pod runtime: cannot start %s: %r", key, exc)
        for key in set(self._pods) - live:
            for c in self._pods.pop(key):
                await c.stop()

    async def _launch(self, pod: Any) -> list[_Container]:
        from kubernetes import client

        assert self._tg is not None
        custom = client.CustomObjectsApi(self.cluster.api_client())
        ns, name = pod.metadata.namespace, pod.metadata.name
        owner = [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid}]
        logs: list[dict[str, Any]] = []
        forwards: list[dict[str, Any]] = []
        containers: list[_Container] = []
        for c in pod.spec.containers:
            log_path = self._logdir / f"{ns}_{name}_{c.name}.log"
            log_path.touch()
            logs.append({"containers": [c.name], "logsFile": str(log_path), "follow": True})
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            for e in c.env or []:
                if e.value is not None:
                    env[e.name] = e.value
            ports = [p.container_port for p in (c.ports or [])]
            if ports:
                local = _free_port()
                env["PLUGIN_MIN_PORT"] = env["PLUGIN_MAX_PORT"] = str(local)
                forwards.append(
                    {"ports": [ports[0]], "target": {"address": "127.0.0.1", "port": local}}
                )
            base = self.images.get(c.image)
            if base is None:
                continue
            argv = (list(c.command) if c.command else list(base)) + list(c.args or [])
            cwd = self._logdir / f"{ns}_{name}_{c.name}.root"
            cwd.mkdir(exist_ok=True)
            container = _Container(c.name, log_path, None)
            container.proc = PluginProcess(
                argv,
                env=env,
                name=f"{name}/{c.name}",
                cwd=cwd,
                on_stdout=container.writer("stdout"),
                on_stderr=container.writer("stderr"),
            )
            await container.proc.start(self._tg)
            containers.append(container)

        def create(plural: str, kind: str, spec: dict[str, Any]) -> None:
            body = {
                "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
                "kind": kind,
                "metadata": {"name": name, "namespace": ns, "ownerReferences": owner},
                "spec": spec,
            }
            custom.create_namespaced_custom_object(
                KWOK_GROUP, KWOK_VERSION, ns, plural, body, _request_timeout=10
            )

        await anyio.to_thread.run_sync(create, "logs", "Logs", {"logs": logs})
        if forwards:
            await anyio.to_thread.run_sync(
                create, "portforwards", "PortForward", {"forwards": forwards}
            )
        return containers

    async def stop(self) -> None:
        self._stopped.set()
        for containers in list(self._pods.values()):
            for c in containers:
                await c.stop()
        self._pods.clear()


async def up(progress: Progress, on_ready: Callable[[LocalCluster], Awaitable[None]]) -> None:
    """Start a :class:`LocalCluster`, call ``on_ready`` with it, stop it when that returns."""
    async with LocalCluster(progress=progress) as cluster:
        await on_ready(cluster)
