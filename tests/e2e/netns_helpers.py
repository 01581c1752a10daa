"""A harness for the networking e2e tests: clusters whose nodes live in network namespaces.

Pod networking changes a host's bridges, routes, sysctls and nftables, and other tests share this
machine, so these tests never touch the root network namespace beyond the test's own veths and
bridge: every "host" is a network namespace ``kltest-h7-<m>...`` the test creates, joined to the
root namespace by a veth pair on a private subnet ``172.31.<m>.0/24`` (one host) or by a bridge
``kltest-br<m>`` the test creates (several hosts).  ``kubelite up`` / ``kubelite agent`` run inside
those namespaces through ``ip netns exec``; kubectl runs in the root namespace and reaches the API
server on the test-created address.  Everything is removed by PID and by name.

The test process reaches into a host namespace without running a command there: ``HostNetns.get``
opens its socket inside the namespace from a helper thread (``setns``) and then uses it normally.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kubelite.agent.runtime import cgroups
from tests.e2e.conftest import Cluster, free_port, stop_cluster

T = TypeVar("T")
IMAGE = "kubelite.local/busybox:1"
NETNS_DIR = Path("/run/netns")
PREFIX = "kltest-h7-"
LOCK = Path(tempfile.gettempdir()) / "kltest-h7-subnets.lock"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
READY_TIMEOUT = 90.0


# --------------------------------------------------------------------------------- commands
def run(*cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> str:
    """Run a command; on failure raise with its output (the message names the command)."""
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout}{res.stderr}")
    return res.stdout


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


# ``ip netns exec`` remounts /sys for the namespace, which drops the cgroup mounts under it, and runc
# then fails ("no cgroup mount found in mountinfo").  Daemons therefore run like ``ip netns exec``
# (netns joined, private mount namespace, /sys of the host namespace so /sys/class/net is right)
# but with the cgroup hierarchies bound back under the new /sys.
_AS_HOST = (
    'set -e; d=$(mktemp -d /run/kltest-h7-cg.XXXXXX); mount --rbind /sys/fs/cgroup "$d"; '
    'mount -t sysfs sysfs /sys; mount --rbind "$d" /sys/fs/cgroup; umount -l "$d"; rmdir "$d"; '
    'exec "$@"'
)


def as_host(ns: str, *cmd: str) -> list[str]:
    """``cmd`` running as a process of the host namespace ``ns`` (the PID stays the command's)."""
    return [
        "nsenter",
        f"--net={NETNS_DIR / ns}",
        "--",
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "--",
        "sh",
        "-c",
        _AS_HOST,
        "sh",
        *cmd,
    ]


def wait_for(
    fn: Callable[[], T | None], timeout: float = 30, what: str = "condition", step: float = 0.1
) -> T:
    """Poll ``fn`` until it returns something truthy; AssertionErrors and OSErrors (an API call
    refused or timing out under load) count as "not yet" and the last one is reported."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
        except (AssertionError, OSError) as e:
            last = e
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(step)


def netns_names() -> set[str]:
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.is_dir() else set()


# --------------------------------------------------------------------------------- subnets
def _used_octets() -> set[int]:
    """Third octets of 172.31.x.0/24 that any address or route of the root namespace touches, or
    that a kltest-h7 namespace/bridge of another run already uses."""
    used: set[int] = set()
    text = run("ip", "-4", "-o", "addr", "show") + run("ip", "-4", "route", "show")
    block = ipaddress.ip_network("172.31.0.0/16")
    for word in text.split():
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(word, strict=False)
            if net.overlaps(block):
                if net.prefixlen < 24:
                    used.update(range(256))
                else:
                    used.add(int(str(net.network_address).split(".")[2]))
    for name in netns_names():
        if name.startswith(PREFIX):
            with contextlib.suppress(ValueError):
                used.add(int(name[len(PREFIX) :].rstrip("ab")))
    return used


@contextlib.contextmanager
def _subnet_lock() -> Iterator[None]:
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pick_octet(create: Callable[[int], None]) -> int:
    """Choose a free 172.31.<m>.0/24 (m in 160..250) and call ``create(m)`` under a file lock, so
    parallel test runs on this machine never pick the same subnet."""
    with _subnet_lock():
        used = _used_octets()
        for m in range(160, 251):
            if m not in used:
                create(m)
                return m
    raise RuntimeError("no free 172.31.x.0/24 for a test host namespace")


# --------------------------------------------------------------------------------- host netns
def socket_in(ns_path: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside the network namespace at ``ns_path`` (from a short-lived thread)."""
    box: list[socket.socket | BaseException] = []

    def make() -> None:
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns_path}")
            box.append(socket.socket(family, kind))
        except BaseException as e:  # handed to the caller
            box.append(e)
        finally:
            os.close(fd)

    t = threading.Thread(target=make)  # the thread ends in the namespace; it is never reused
    t.start()
    t.join()
    got = box[0]
    if isinstance(got, BaseException):
        raise got
    return got


def http_get(host: str, port: int, path: str = "/", timeout: float = 2.0, ns: str = "") -> str:
    """A plain HTTP/1.0 GET returning the body ("" on any error); from inside network namespace
    ``ns`` if set (a name under /run/netns or a path such as /proc/PID/ns/net)."""
    try:
        sock = socket_in(ns if ns.startswith("/") else str(NETNS_DIR / ns)) if ns else socket.socket()
        with sock:
            sock.settimeout(timeout)
            sock.connect((host, port))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
    except OSError:
        return ""
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return body.decode(errors="replace").strip() if b" 200 " in head.split(b"\r\n")[0] else ""


@dataclass
class HostNetns:
    """A network namespace acting as a host, with ``lo`` up and ``eth0`` (veth) at ``ip``."""

    name: str
    ip: str
    prefix: int
    veth: str  # the root-side end
    gateway: str = ""  # the root side's address when it has one

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    def sh(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        return run(*in_ns(self.name, *cmd), check=check, timeout=timeout)

    def get(self, host: str, port: int, path: str = "/", timeout: float = 2.0) -> str:
        return http_get(host, port, path, timeout, ns=self.name)

    def udp_query(self, server: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes:
        with socket_in(self.path, socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(payload, (server, port))
            return s.recv(65536)

    def links(self) -> list[str]:
        return [line.split()[0].split("@")[0] for line in self.sh("ip", "-br", "link").splitlines()]

    def routes(self) -> list[str]:
        return [line for line in self.sh("ip", "-4", "route", "show", "table", "all").splitlines() if line]

    def nft_tables(self) -> list[str]:
        return [line for line in self.sh("nft", "list", "tables").splitlines() if line]

    def delete(self) -> None:
        run("ip", "link", "del", self.veth, check=False)
        run("ip", "netns", "del", self.name, check=False)


def _make_host(name: str, ip: str, prefix: int, veth: str, gateway: str = "", bridge: str = "") -> HostNetns:
    host = HostNetns(name, ip, prefix, veth, gateway)
    try:
        run("ip", "netns", "add", name)
        host.sh("ip", "link", "set", "lo", "up")
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        if bridge:
            run("ip", "link", "set", veth, "master", bridge)
        elif gateway:
            run("ip", "addr", "add", f"{gateway}/{prefix}", "dev", veth)
        run("ip", "link", "set", veth, "up")
        host.sh("ip", "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        host.sh("ip", "link", "set", "eth0", "up")
    except BaseException:
        host.delete()
        raise
    return host


def create_host() -> HostNetns:
    """One host namespace ``kltest-h7-<m>`` at 172.31.<m>.2/30, the root side at .1."""
    made: list[HostNetns] = []

    def create(m: int) -> None:
        made.append(_make_host(f"{PREFIX}{m}", f"172.31.{m}.2", 30, f"kh7-{m}r", gateway=f"172.31.{m}.1"))

    pick_octet(create)
    return made[0]


@dataclass
class Lan:
    """A bridge ``kltest-br<m>`` in the root namespace at 172.31.<m>.1/24 with host namespaces on it."""

    octet: int
    bridge: str
    hosts: list[HostNetns] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return f"172.31.{self.octet}.1"

    def add_host(self, suffix: str) -> HostNetns:
        n = len(self.hosts) + 2
        host = _make_host(
            f"{PREFIX}{self.octet}{suffix}",
            f"172.31.{self.octet}.{n}",
            24,
            f"kh7-{self.octet}{suffix}",
            bridge=self.bridge,
        )
        self.hosts.append(host)
        return host

    def delete(self) -> None:
        for h in self.hosts:
            h.delete()
        run("ip", "link", "del", self.bridge, check=False)


def create_lan() -> Lan:
    made: list[Lan] = []

    def create(m: int) -> None:
        br = f"kltest-br{m}"
        run("ip", "link", "add", br, "type", "bridge")
        try:
            run("ip", "addr", "add", f"172.31.{m}.1/24", "dev", br)
            run("ip", "link", "set", br, "up")
        except BaseException:
            run("ip", "link", "del", br, check=False)
            raise
        made.append(Lan(m, br))

    pick_octet(create)
    return made[0]


# --------------------------------------------------------------------------------- processes
def import_busybox(agent_dir: Path) -> None:
    """Put the locally built busybox-static image into an agent's image store (no registry)."""
    from kubelite.agent.images import builder
    from kubelite.agent.images.importer import import_image_object
    from kubelite.agent.images.store import ImageStore

    import_image_object(ImageStore(agent_dir / "images"), builder.busybox_image(), IMAGE)


def _pump(proc: subprocess.Popen[str], sink: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)
        if " ready in " in line:
            ready.set()
    ready.set()


def spawn(
    cmd: list[str], what: str, timeout: float = READY_TIMEOUT
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start a kubelite process (its own session, so a signal reaches only it) and wait for its
    "ready in" line; on failure kill it and raise with its output."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    out: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_pump, args=(proc, out, ready), daemon=True).start()
    if not ready.wait(timeout) or proc.poll() is not None:
        stop_process(proc)
        raise RuntimeError(f"{what} did not become ready:\n" + "".join(out))
    return proc, out


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)


def kubelite(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubelite.cli", *args]


def start_cluster_in(host: HostNetns, data_dir: Path, *extra: str) -> Cluster:
    """``kubelite up`` inside ``host`` (API, controllers, agent with CNI, proxy, DNS), bound to the
    host's address; kubectl from the root namespace talks to it there."""
    import_busybox(data_dir / "agent")
    port = free_port()
    cmd = as_host(
        host.name,
        *kubelite(
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--bind",
            host.ip,
            "--node-ip",
            host.ip,
            "--crash-loop-backoff",
            "1",
            *extra,
        ),
    )
    proc, out = spawn(cmd, f"kubelite up in {host.name}")
    cluster = Cluster(data_dir, port, proc, Path(tempfile.mkdtemp(prefix="kubectl-cache-")), output=out)
    cluster.ready_line = next(line for line in out if " ready in " in line)
    return cluster


def start_control_plane(lan: Lan, data_dir: Path) -> Cluster:
    """``kubelite up --no-agent`` in the root namespace, bound only to the test bridge's address."""
    port = free_port()
    cmd = kubelite(
        "up", "--no-agent", "--data-dir", str(data_dir), "--port", str(port), "--bind", lan.gateway
    )
    proc, out = spawn(cmd, "kubelite up --no-agent")
    cluster = Cluster(data_dir, port, proc, Path(tempfile.mkdtemp(prefix="kubectl-cache-")), output=out)
    cluster.ready_line = next(line for line in out if " ready in " in line)
    return cluster


@dataclass
class Agent:
    host: HostNetns
    node: str
    data_dir: Path
    proc: subprocess.Popen[str]
    output: list[str]


def start_agent(cluster: Cluster, host: HostNetns, node: str, data_dir: Path, *extra: str) -> Agent:
    import_busybox(data_dir)
    cmd = as_host(
        host.name,
        *kubelite(
            "agent",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--node-name",
            node,
            "--node-ip",
            host.ip,
            "--data-dir",
            str(data_dir),
            "--crash-loop-backoff",
            "1",
            *extra,
        ),
    )
    proc, out = spawn(cmd, f"kubelite agent in {host.name}")
    return Agent(host, node, data_dir, proc, out)


def pod_netns(agent_dir: Path, pod: dict[str, Any]) -> str:
    """``/proc/<pid>/ns/net`` of a running pod's first container, from the agent's state: a path
    the test process can enter (``socket_in``) to act as that pod on the network."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    state = json.loads((agent_dir / "containers" / cid / "state.json").read_text())
    return f"/proc/{int(state['pid'])}/ns/net"


# --------------------------------------------------------------------------------- cleanup checks
def sandbox_netns(agent_dir: Path) -> set[str]:
    """The pod network namespaces (``kubelite-<sandbox id>``) an agent created."""
    d = agent_dir / "sandboxes"
    return {f"kubelite-{p.name}" for p in d.iterdir()} if d.is_dir() else set()


def leftovers(host: HostNetns, agent_dir: Path, seen_netns: set[str], bridge: str = "kubelite0") -> list[str]:
    """What kubelite left behind in a host namespace after it stopped (empty when clean)."""
    found: list[str] = []
    found += [f"netns {n}" for n in (seen_netns | sandbox_netns(agent_dir)) & netns_names()]
    found += [f"link {ln}" for ln in host.links() if ln not in ("lo", "eth0")]
    found += [
        f"route {r}"
        for r in host.routes()
        if bridge in r
        or "10.244." in r
        or "10.96." in r
        or not (r.startswith(("local", "broadcast")) or "eth0" in r)
    ]
    found += [f"nft {t}" for t in host.nft_tables()]
    runc = agent_dir / "runc"
    if runc.is_dir():
        ids = run("runc", "--root", str(runc), "list", "-q", check=False).split()
        found += [f"container {i}" for i in ids]
    return found


def force_cleanup(agent_dir: Path) -> None:
    """Last resort after a failed test: kill this agent's containers and remove its pod netns and
    pod cgroups (only those of this agent's pods; other runs share the machine)."""
    runc = agent_dir / "runc"
    if runc.is_dir():
        for cid in run("runc", "--root", str(runc), "list", "-q", check=False).split():
            run("runc", "--root", str(runc), "delete", "-f", cid, check=False)
    containers = agent_dir / "containers"
    for state in containers.glob("*/state.json") if containers.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError):  # its supervisor, by PID
            pid = int(json.loads(state.read_text())["shim_pid"])
            if str(state.parent).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # not reused
                os.kill(pid, signal.SIGKILL)
    for name in sandbox_netns(agent_dir) & netns_names():
        run("ip", "netns", "del", name, check=False)
    pods = agent_dir / "pods"
    uids = {p.name for p in pods.iterdir()} if pods.is_dir() else set()
    for base in cgroups.proc_cgroups().values():
        for uid in uids:
            for d in (base / "kubelite").glob(f"**/pod{uid}"):
                cgroups.remove_tree(d)


def finish(cluster: Cluster) -> int:
    rc = stop_cluster(cluster)
    shutil.rmtree(cluster.cache_dir, ignore_errors=True)
    return rc


# --------------------------------------------------------------------------------- API access
class Api:
    """Direct API reads for fast polling (kubectl takes ~0.2 s per call)."""

    def __init__(self, cluster: Cluster) -> None:
        cfg = yaml.safe_load(cluster.kubeconfig.read_text())
        self.server = cfg["clusters"][0]["cluster"]["server"].rstrip("/")
        self.token = cluster.token()
        self.ctx = ssl.create_default_context(cafile=str(cluster.ca()))

    def get(self, path: str) -> Any:
        import urllib.request

        req = urllib.request.Request(self.server + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
            return json.loads(resp.read())

    def find(self, path: str) -> Any:
        """Like :meth:`get`, but None when the object does not exist (404)."""
        import urllib.error

        try:
            return self.get(path)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def pods(self, ns: str, selector: str = "") -> list[dict[str, Any]]:
        q = f"?labelSelector={selector}" if selector else ""
        return list(self.get(f"/api/v1/namespaces/{ns}/pods{q}")["items"])

    def ready_endpoints(self, ns: str, service: str) -> set[str]:
        """Addresses of the Service's EndpointSlices whose endpoint is ready (nil counts as ready)."""
        sel = f"kubernetes.io/service-name={service}"
        slices = self.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={sel}")
        out: set[str] = set()
        for s in slices["items"]:
            for ep in s.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is not False:
                    out.update(ep.get("addresses") or [])
        return out


@dataclass
class Net:
    """A single-node cluster in a host namespace, as the networking tests share it."""

    host: HostNetns
    cluster: Cluster
    api: Api
    data: Path

    def service_ip(self, ns: str, name: str) -> str:
        return str(self.api.get(f"/api/v1/namespaces/{ns}/services/{name}")["spec"]["clusterIP"])

    def client(self, ns: str, name: str = "client", labels: dict[str, str] | None = None) -> str:
        """A ready sleeping client pod (labels default to ``role: <name>``); returns its name."""
        labels = labels or {"role": name}
        self.cluster.apply(sleeper(name, ns, labels))
        wait_ready(self.api, ns, ",".join(f"{k}={v}" for k, v in labels.items()), 1)
        return name

    def namespace(self, prefix: str, test_name: str) -> Iterator[str]:
        """A fresh namespace named after the test, deleted (without waiting) afterwards."""
        name = prefix + re.sub(r"[^a-z0-9-]", "-", test_name.lower().removeprefix("test_"))[:40].strip("-")
        self.cluster.kubectl("create", "namespace", name)
        yield name
        self.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def names(pods: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["name"] for p in pods}


def is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def wait_ready(
    api: Api, ns: str, selector: str, count: int, timeout: float = 60, need_ip: bool = True
) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` non-terminating pods match and all are Ready (with an IP)."""

    def check() -> list[dict[str, Any]] | None:
        pods = [p for p in api.pods(ns, selector) if not p["metadata"].get("deletionTimestamp")]
        ok = len(pods) == count and all(
            is_ready(p) and (p["status"].get("podIP") or not need_ip) for p in pods
        )
        return pods if ok else None

    return wait_for(check, timeout, f"{count} ready pods {selector!r} in {ns}", step=0.2)


# --------------------------------------------------------------------------------- manifests
def web_container(port: int = 8080, probe: bool = True) -> dict[str, Any]:
    """busybox httpd answering every GET / with the pod's name; ready while /tmp/ready exists."""
    c: dict[str, Any] = {
        "name": "web",
        "image": IMAGE,
        "command": [
            "sh",
            "-c",
            f"mkdir -p /www && echo $POD_NAME > /www/index.html && touch /tmp/ready && "
            f"exec httpd -f -p {port} -h /www",
        ],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"containerPort": port, "name": "http"}],
    }
    if probe:
        c["readinessProbe"] = {
            "exec": {"command": ["cat", "/tmp/ready"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
            "successThreshold": 1,
        }
    return c


def pod_spec(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"containers": list(containers), "terminationGracePeriodSeconds": 1}


def deployment(name: str, ns: str, replicas: int, labels: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(web_container(**kw))},
        },
    }


def service(name: str, ns: str, selector: dict[str, str], port: int = 80, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def sleeper(name: str, ns: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A client pod: busybox sleeping, used through ``kubectl exec``."""
    c = {"name": "main", "image": IMAGE, "command": ["sh", "-c", "exec sleep 3600"]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"role": "client"}},
        "spec": {**pod_spec(c), **spec},
    }


def exec_in(cluster: Cluster, ns: str, pod: str, script: str, timeout: float = 120) -> str:
    return cluster.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, timeout=timeout).stdout


def fetch_many(cluster: Cluster, ns: str, pod: str, url: str, n: int) -> list[str]:
    """``n`` GETs of ``url`` from inside ``pod`` (one ``kubectl exec``); one line per request, ""
    for a failed one (busybox wget -T segfaults, so ``timeout`` bounds each request)."""
    script = f'for i in $(seq {n}); do echo "=$(timeout 3 wget -qO- {url} 2>/dev/null)"; done'
    return [line[1:] for line in exec_in(cluster, ns, pod, script).splitlines() if line.startswith("=")]
