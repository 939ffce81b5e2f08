"""A real Kubernetes control plane on loopback, for the ``plugwire.kube`` tests.

Components (all from upstream Go modules, linked into one multi-call binary built by
:func:`support.gobuild.build_go` from ``tests/interop/kube/cmd/kubeplane``):

* etcd (go.etcd.io/etcd/server/v3), kube-apiserver, kube-controller-manager and
  kube-scheduler (k8s.io/kubernetes), and the kwok controller (sigs.k8s.io/kwok)
  managing one fake node and serving its kubelet API (logs, port-forward) over TLS.

Every component listens on 127.0.0.1 (random free ports). Certificates are made
with ``cryptography``: one CA, the API server's serving cert, kwok's kubelet serving
cert, an ``admin`` client cert (group ``system:masters``) and a ``nobody`` client cert
with no RBAC rights (for Forbidden tests). The service-account signing key is a
separate RSA key.

:class:`PodRuntime` is the "container runtime" of the fake node: it watches pods bound
to the node, runs each container as a local process (the image name maps to a local
argv, the container's env is passed as is), writes its stdout/stderr as CRI log lines
into a file, and creates kwok ``Logs`` and ``PortForward`` resources for the pod so the
API server's ``pods/log`` and ``pods/portforward`` reach that process, exactly as they
would reach a container through a kubelet. Each pod gets its own loopback port for its
first container port (``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT`` are set to it: the local
stand-in for the pod's network namespace), and kwok forwards the declared container
port there.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from plugwire.kube._pki import PKI

from .gobuild import build_go

NODE_NAME = "kwok-node-0"
KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"
SERVICE_CIDR = "10.96.0.0/16"


def kubeplane_binary() -> Path:
    """The multi-call control-plane binary (built once into the version-keyed cache)."""
    return build_go("kube", "./cmd/kubeplane", timeout=3600)


# ---------------------------------------------------------------------------- certs


# ---------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClusterStartError(RuntimeError):
    """The test control plane did not come up; the message carries the component log tail."""


class _Component:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            close_fds=True,
        )

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ClusterStartError(
                f"{self.name} exited with status {self.proc.returncode}:\n{self.tail()}"
            )

    def stop(self, grace: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _wait(
    what: str, check: Callable[[], bool], timeout: float, alive: Sequence[_Component]
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        for component in alive:
            component.check_alive()
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {c.name}:\n{c.tail()}" for c in alive)
            raise ClusterStartError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


# ---------------------------------------------------------------------------- cluster


class KubeCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback.

    Use as a context manager (or :meth:`start`/:meth:`stop`). ``kubeconfig`` is an
    admin kubeconfig file, ``kubeconfig_for("nobody")`` one without any RBAC rights.
    """

    def __init__(self, workdir: Path | None = None, *, binary: Path | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="plugwire-kube-"))
        self.binary = binary
        self.components: list[_Component] = []
        self.server = ""
        self.node_name = NODE_NAME
        self.runtime: PodRuntime | None = None
        self._kubeconfigs: dict[str, Path] = {}
        self.timings: dict[str, float] = {}

    # -- lifecycle

    def __enter__(self) -> KubeCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, *args: str) -> _Component:
        assert self.binary is not None
        comp = _Component(name, [str(self.binary), name, *args], self.workdir / f"{name}.log")
        self.components.append(comp)
        return comp

    def start(self, timeout: float = 120.0) -> None:
        t0 = time.monotonic()
        if self.binary is None:
            self.binary = kubeplane_binary()
        self.timings["build"] = time.monotonic() - t0
        t1 = time.monotonic()
        pki = PKI(self.workdir / "pki", ca_name="plugwire-test-ca")
        self.ca_path = pki.ca_path
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
        users = {
            "admin": pki.issue("admin", common_name="admin", organizations=["system:masters"]),
            "nobody": pki.issue("nobody", common_name="nobody"),
            "apiserver-kubelet": pki.issue(
                "apiserver-kubelet",
                common_name="kube-apiserver-kubelet-client",
                organizations=["system:masters"],
            ),
        }
        sa_key = pki.service_account_key()
        etcd_port, etcd_peer, api_port, kwok_port = (free_port() for _ in range(4))
        self.server = f"https://127.0.0.1:{api_port}"
        for user, (crt, key) in users.items():
            self._kubeconfigs[user] = self._write_kubeconfig(user, crt, key)
        self.kubeconfig = self._kubeconfigs["admin"]

        assets = self.workdir / "kwok"
        subprocess.run(
            [str(self.binary), "kwok-assets", str(assets)],
            check=True,
            capture_output=True,
            timeout=60,
        )

        etcd = self._start(
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
        _wait(
            "etcd /health",
            lambda: (
                b"true"
                in urllib.request.urlopen(f"http://127.0.0.1:{etcd_port}/health", timeout=2).read()
            ),
            30,
            [etcd],
        )
        self.timings["etcd"] = time.monotonic() - t1

        apiserver = self._start(
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
            f"--kubelet-client-certificate={users['apiserver-kubelet'][0]}",
            f"--kubelet-client-key={users['apiserver-kubelet'][1]}",
            "--kubelet-preferred-address-types=InternalIP",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--v=1",
        )
        ctx = ssl.create_default_context(cafile=str(pki.ca_path))
        ctx.load_cert_chain(*users["admin"])

        def readyz() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=3) as r:
                return bool(r.status == 200)

        _wait("kube-apiserver /readyz", readyz, timeout, [etcd, apiserver])
        self.timings["apiserver"] = time.monotonic() - t1

        admin_kc = str(self.kubeconfig)
        self._start(
            "kube-controller-manager",
            f"--kubeconfig={admin_kc}",
            f"--authentication-kubeconfig={admin_kc}",
            f"--authorization-kubeconfig={admin_kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            f"--root-ca-file={pki.ca_path}",
            f"--service-account-private-key-file={sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=false",
            "--v=1",
        )
        self._start(
            "kube-scheduler",
            f"--kubeconfig={admin_kc}",
            f"--authentication-kubeconfig={admin_kc}",
            f"--authorization-kubeconfig={admin_kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        )
        api = self.api_client()
        self._apply_crds(api, assets / "crds.yaml")
        self._start(
            "kwok",
            f"--kubeconfig={admin_kc}",
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
        self._create_node(api)
        self._wait_cluster_ready(api, timeout)
        self.timings["ready"] = time.monotonic() - t1
        self.runtime = PodRuntime(self)
        self.runtime.start()

    def stop(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        for comp in reversed(self.components):
            with contextlib.suppress(Exception):
                comp.stop()
        self.components.clear()
        if self._own_workdir and not os.environ.get("PLUGWIRE_KEEP_KUBE"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- clients

    def _write_kubeconfig(self, user: str, crt: Path, key: Path) -> Path:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "plugwire",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.workdir / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [
                {"name": user, "user": {"client-certificate": str(crt), "client-key": str(key)}}
            ],
            "contexts": [
                {
                    "name": user,
                    "context": {"cluster": "plugwire", "user": user, "namespace": "default"},
                }
            ],
            "current-context": user,
        }
        path = self.workdir / f"kubeconfig-{user}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def kubeconfig_for(self, user: str) -> Path:
        return self._kubeconfigs[user]

    def api_client(self, user: str = "admin") -> Any:
        from kubernetes import config

        return config.new_client_from_config(  # type: ignore[no-untyped-call,unused-ignore]
            config_file=str(self._kubeconfigs[user])
        )

    # -- bootstrap

    def _apply_crds(self, api: Any, path: Path) -> None:
        from kubernetes import client

        ext = client.ApiextensionsV1Api(api)
        names = []
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                ext.create_custom_resource_definition(doc, _request_timeout=10)
                names.append(doc["metadata"]["name"])

        def established() -> bool:
            for name in names:
                crd = ext.read_custom_resource_definition(name, _request_timeout=5)
                status = crd.status
                conds = {c.type: c.status for c in ((status.conditions if status else None) or [])}
                if conds.get("Established") != "True":
                    return False
            return True

        _wait("kwok CRDs established", established, 30, self.components)

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

    def _wait_cluster_ready(self, api: Any, timeout: float) -> None:
        from kubernetes import client

        core = client.CoreV1Api(api)

        def node_ready() -> bool:
            status = core.read_node(NODE_NAME, _request_timeout=5).status
            conditions = (status.conditions if status else None) or []
            return any(c.type == "Ready" and c.status == "True" for c in conditions)

        def default_sa() -> bool:
            core.read_namespaced_service_account("default", "default", _request_timeout=5)
            return True

        _wait("the kwok node to be Ready", node_ready, timeout, self.components)
        _wait(
            "the default ServiceAccount (controller-manager)", default_sa, timeout, self.components
        )


# ---------------------------------------------------------------------------- pod runtime


class _Container:
    def __init__(
        self,
        pod_key: str,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._lock = threading.Lock()
        self._log = open(log_path, "ab", buffering=0)  # noqa: SIM115 (closed in stop)
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        except OSError as exc:
            self.proc = None
            self._write("stderr", f"failed to start {argv!r}: {exc}".encode())
            return
        self._pumps = [
            threading.Thread(
                target=self._pump, args=(s, n), daemon=True, name=f"{pod_key}/{name}/{n}"
            )
            for s, n in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr"))
        ]
        for t in self._pumps:
            t.start()

    def _write(self, stream: str, line: bytes) -> None:
        # The CRI log format containerd writes and kubelet/kwok read back.
        ts = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            if not self._log.closed:
                self._log.write(f"{ts} {stream} F ".encode() + line.rstrip(b"\r\n") + b"\n")

    def _pump(self, pipe: IO[bytes] | None, stream: str) -> None:
        assert pipe is not None
        for line in iter(pipe.readline, b""):
            self._write(stream, line)

    def stop(self, grace: float = 3.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in getattr(self, "_pumps", []):
            t.join(2)
        with self._lock:
            self._log.close()


class PodRuntime:
    """Runs the containers of pods bound to the kwok node as local processes.

    ``images`` maps an image name to the argv that stands for its entrypoint; the
    container's ``command`` replaces it and its ``args`` are appended, as with a real
    image. Unknown images get no process (kwok still reports the pod Running, like a
    container that prints nothing). ``started`` lists ``namespace/pod`` keys in start
    order.
    """

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self.images: dict[str, list[str]] = {}
        self.extra_env: dict[str, str] = {}
        self.started: list[str] = []
        self._pods: dict[str, list[_Container]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logdir = cluster.workdir / "pods"
        self._logdir.mkdir(exist_ok=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kwok-pod-runtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            pods = list(self._pods.values())
            self._pods.clear()
        for containers in pods:
            for c in containers:
                c.stop()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._pods)

    def _run(self) -> None:
        from kubernetes import client, watch

        api = self.cluster.api_client()
        core = client.CoreV1Api(api)
        while not self._stop.is_set():
            try:
                w = watch.Watch()  # type: ignore[no-untyped-call,unused-ignore]
                for event in w.stream(  # type: ignore[no-untyped-call,unused-ignore]
                    core.list_pod_for_all_namespaces,
                    field_selector=f"spec.nodeName={self.cluster.node_name}",
                    timeout_seconds=2,
                    _request_timeout=10,
                ):
                    if self._stop.is_set():
                        w.stop()  # type: ignore[no-untyped-call,unused-ignore]
                        break
                    self._handle(api, event["type"], event["object"])
            except Exception:
                if self._stop.wait(0.2):
                    break

    def _handle(self, api: Any, kind: str, pod: Any) -> None:
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if kind == "DELETED" or pod.metadata.deletion_timestamp is not None:
            with self._lock:
                containers = self._pods.pop(key, None)
            for c in containers or []:
                c.stop()
            return
        with self._lock:
            if key in self._pods:
                return
            self._pods[key] = []
        try:
            self._launch(api, key, pod)
        except Exception as exc:  # keep the runtime alive; the test sees no process
            (self._logdir / f"{pod.metadata.namespace}_{pod.metadata.name}.error").write_text(
                repr(exc)
            )

    def _launch(self, api: Any, key: str, pod: Any) -> None:
        from kubernetes import client

        custom = client.CustomObjectsApi(api)
        ns, name = pod.metadata.namespace, pod.metadata.name
        owner = [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid}]
        logs: list[dict[str, Any]] = []
        forwards: list[dict[str, Any]] = []
        containers: list[_Container] = []
        for c in pod.spec.containers:
            log_path = self._logdir / f"{ns}_{name}_{c.name}.log"
            log_path.touch()
            logs.append({"containers": [c.name], "logsFile": str(log_path), "follow": True})
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.extra_env}
            for e in c.env or []:
                if e.value is not None:
                    env[e.name] = e.value
            ports = [p.container_port for p in (c.ports or [])]
            if ports:
                local = free_port()
                env["PLUGIN_MIN_PORT"] = env["PLUGIN_MAX_PORT"] = str(local)
                forwards.append(
                    {"ports": [ports[0]], "target": {"address": "127.0.0.1", "port": local}}
                )
            base = self.images.get(c.image)
            if base is None:
                continue
            argv = list(c.command) if c.command else list(base)
            argv += list(c.args or [])
            cwd = self._logdir / f"{ns}_{name}_{c.name}.root"
            cwd.mkdir(exist_ok=True)
            containers.append(_Container(key, c.name, argv, env, log_path, cwd))
        custom.create_namespaced_custom_object(
            KWOK_GROUP,
            KWOK_VERSION,
            ns,
            "logs",
            {
                "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
                "kind": "Logs",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": owner},
                "spec": {"logs": logs},
            },
            _request_timeout=10,
        )
        if forwards:
            custom.create_namespaced_custom_object(
                KWOK_GROUP,
                KWOK_VERSION,
                ns,
                "portforwards",
                {
                    "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
                    "kind": "PortForward",
                    "metadata": {"name": name, "namespace": ns, "ownerReferences": owner},
                    "spec": {"forwards": forwards},
                },
                _request_timeout=10,
            )
        with self._lock:
            if key in self._pods:
                self._pods[key] = containers
                self.started.append(key)
                return
        for c in containers:  # deleted meanwhile
            c.stop()


@contextlib.contextmanager
def running_cluster() -> Iterator[KubeCluster]:
    with KubeCluster() as cluster:
        yield cluster
