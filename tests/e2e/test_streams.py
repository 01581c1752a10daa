"""Streams through the API server, end to end: the real kubectl against a real ``kubelite up`` whose
node agent runs pods with the real runc (images built from busybox-static, pushed to a real
``docker-registry``): logs (all options), exec (output, exit codes, stdin), attach, cp,
port-forward, top, and the agent endpoint refusing anonymous callers.  Runs as root (CI)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.images.builder import busybox_image, push
from tests.e2e.agent_helpers import cleanup_agent, cstatus, pod, runc_ids, wait_for
from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.registry import Registry, running_registry

NS = "streams-e2e"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"


@dataclass
class Env:
    cluster: Cluster
    registry: Registry
    image: str
    agent_dir: Path
    tmp: Path

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", NS, *args, **kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("streams-e2e")
    with running_registry(tmp / "registry") as reg:
        push(busybox_image(), reg.host, "test/busybox", "v1")
        data = tmp / "data"
        cluster = start_cluster(data, "--crash-loop-backoff", "1", "--agent-port", "0", agent=True)
        e = Env(cluster, reg, reg.ref("test/busybox", "v1"), data / "agent", tmp)
        try:
            assert "runtime=runc" in cluster.ready_line, cluster.ready_line
            cluster.kubectl("create", "namespace", NS)
            yield e
        finally:
            _teardown(e)


def _teardown(e: Env) -> None:
    c = e.cluster
    if c.proc.poll() is None:
        c.kubectl("delete", "pods", "--all", "-n", NS, "--grace-period=0", "--force", check=False, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and runc_ids(e.agent_dir):
            time.sleep(0.2)
    stop_cluster(e.cluster)
    cleanup_agent(e.agent_dir)


def run_pod(e: Env, name: str, script: str, restart: str = "Always", **spec: Any) -> dict[str, Any]:
    e.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "restartPolicy": restart,
                "containers": [{"name": "main", "image": e.image, "command": ["sh", "-c", script]}],
                **spec,
            },
        }
    )

    def started() -> dict[str, Any] | None:
        p = pod(e.cluster, NS, name)
        st = cstatus(p, "main")
        return p if st.get("state", {}).get("running") or st.get("state", {}).get("terminated") else None

    return wait_for(started, 40, f"pod {name} started")


def logs(e: Env, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return e.kubectl("logs", *args, check=check, timeout=30)


# ---------------------------------------------------------------------------------- logs


def test_logs_with_options(env: Env) -> None:
    run_pod(
        env, "logger", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo oops >&2; exec sleep 600"
    )
    out = wait_for(lambda: logs(env, "logger").stdout if "oops" in logs(env, "logger").stdout else None, 20)
    assert out == "line1\nline2\nline3\nline4\nline5\noops\n"
    assert logs(env, "logger", "--tail=2").stdout == "line5\noops\n"
    assert logs(env, "logger", "--tail=0").stdout == ""
    assert logs(env, "logger", "--limit-bytes=8").stdout == "line1\nli"
    stamped = logs(env, "logger", "--timestamps", "--tail=1").stdout
    assert re.fullmatch(rf"{TS} oops\n", stamped), stamped
    assert logs(env, "logger", "--since=1h").stdout == out
    time.sleep(2.1)
    assert logs(env, "logger", "--since=1s").stdout == ""
    assert logs(env, "logger", "-c", "main").stdout == out
    assert logs(env, "pod/logger", "--all-containers").stdout == out


def test_logs_errors(env: Env) -> None:
    run_pod(env, "errs", "exec sleep 600")
    bad = logs(env, "errs", "-c", "nope", check=False)
    assert bad.returncode != 0
    assert "container nope is not valid for pod errs" in bad.stderr
    prev = logs(env, "errs", "--previous", check=False)
    assert prev.returncode != 0
    assert 'previous terminated container "main" in pod "errs" not found' in prev.stderr
    missing = logs(env, "no-such-pod", check=False)
    assert 'pods "no-such-pod" not found' in missing.stderr


def test_logs_follow_until_exit(env: Env) -> None:
    run_pod(env, "follower", "echo a; sleep 1; echo b; sleep 1; echo c", restart="Never")
    started = time.monotonic()
    out = logs(env, "-f", "follower")
    assert out.returncode == 0
    assert out.stdout == "a\nb\nc\n"
    assert time.monotonic() - started < 20


def test_logs_previous_after_restart(env: Env) -> None:
    run_pod(env, "restarter", "echo run-$(cat /proc/uptime | cut -d' ' -f1); sleep 1; exit 1")

    def restarted() -> bool:
        return int(cstatus(pod(env.cluster, NS, "restarter"), "main").get("restartCount", 0)) >= 1

    wait_for(restarted, 40, "a restart")
    prev = logs(env, "restarter", "--previous").stdout
    assert re.fullmatch(r"run-[\d.]+\n", prev), prev
    cur = wait_for(lambda: logs(env, "restarter").stdout, 20, "current logs")
    assert cur.startswith("run-") and cur != prev


# ---------------------------------------------------------------------------------- exec


def test_exec_output_exit_code_and_stdin(env: Env) -> None:
    run_pod(env, "shell", "exec sleep 600")
    out = env.kubectl("exec", "shell", "--", "echo", "hello", "world")
    assert out.stdout == "hello world\n"
    err = env.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2")
    assert err.stdout == "out\n" and "err\n" in err.stderr
    failed = env.kubectl("exec", "shell", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3, failed
    piped = env.kubectl("exec", "-i", "shell", "--", "sh", "-c", "tr a-z A-Z", input="piped input\n")
    assert piped.stdout == "PIPED INPUT\n"
    big = env.kubectl("exec", "-i", "shell", "--", "wc", "-c", input="x" * 200_000)
    assert big.stdout.strip() == "200000"
    bad = env.kubectl("exec", "shell", "-c", "nope", "--", "true", check=False)
    assert bad.returncode != 0 and "container nope is not valid for pod shell" in bad.stderr


def test_cp_copies_a_file_out(env: Env) -> None:
    run_pod(env, "cpsrc", "mkdir -p /data; echo copied-content > /data/file.txt; exec sleep 600")
    wait_for(
        lambda: env.kubectl("exec", "cpsrc", "--", "cat", "/data/file.txt", check=False).returncode == 0, 20
    )
    dest = env.tmp / "copied.txt"
    env.kubectl("cp", f"{NS}/cpsrc:/data/file.txt", str(dest))
    assert dest.read_text() == "copied-content\n"
    src = env.tmp / "upload.txt"
    src.write_text("uploaded\n")
    env.kubectl("cp", str(src), f"{NS}/cpsrc:/data/upload.txt")
    assert env.kubectl("exec", "cpsrc", "--", "cat", "/data/upload.txt").stdout == "uploaded\n"


def test_attach_shows_output(env: Env) -> None:
    run_pod(env, "ticker", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.3; done")
    proc = subprocess.Popen(
        ["kubectl", "attach", "ticker", "-n", NS],
        env=env.cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(3)]
        assert all(re.fullmatch(r"tick\d+\n", s) for s in seen), seen
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------- port-forward


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_port_forward_reaches_http_server(env: Env, transport: str) -> None:
    """Both of kubectl's transports: SPDY over a WebSocket (the default) and the raw SPDY/3.1
    upgrade (what kubectl falls back to; forced with KUBECTL_PORT_FORWARD_WEBSOCKETS=false)."""
    run_pod(
        env,
        f"web-{transport}",
        "mkdir -p /www && echo served-by-pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www",
    )
    local = _free_port()
    kube_env = {**env.cluster.env(), "KUBECTL_PORT_FORWARD_WEBSOCKETS": str(transport == "websocket").lower()}
    proc = subprocess.Popen(
        ["kubectl", "port-forward", "-n", NS, f"pod/web-{transport}", f"{local}:8080", "-v=4"],
        env=kube_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if f"Forwarding from 127.0.0.1:{local} -> 8080" not in line:
            proc.terminate()
            raise AssertionError(f"port-forward did not start: {line!r} {proc.communicate(timeout=10)}")

        def fetch() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=5) as r:
                return str(r.read().decode())

        assert wait_for(fetch, 20, "a page through the forward") == "served-by-pod\n"
        assert fetch() == "served-by-pod\n"  # a second connection over the same session
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------- top + agent auth


def test_top_pods_and_nodes(env: Env) -> None:
    run_pod(env, "burner", "while true; do :; done")

    def top() -> str | None:
        out = env.kubectl("top", "pods", check=False)
        return out.stdout if out.returncode == 0 and "burner" in out.stdout else None

    table = wait_for(top, 40, "kubectl top pods")
    row = next(line for line in table.splitlines() if line.startswith("burner"))
    cpu = int(row.split()[1].removesuffix("m"))
    assert cpu >= 50, table  # a busy loop shows real usage (an idle pod reads 0-1m); the machine may be busy
    assert re.search(r"\d+Mi", row.split()[2]), table
    nodes = env.cluster.kubectl("top", "nodes").stdout
    assert re.search(r"\d+m\s+\d+%\s+\d+Mi\s+\d+%", nodes), nodes
    env.kubectl("delete", "pod", "burner", "--grace-period=0", "--force", check=False)


def _agent_endpoint(env: Env) -> tuple[str, int]:
    node = env.cluster.json("get", "nodes")["items"][0]
    addr = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    return addr, int(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])


def _agent_get(env: Env, path: str, token: str | None) -> tuple[int, bytes]:
    host, port = _agent_endpoint(env)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(f"https://{host}:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def test_agent_endpoint_rejects_anonymous_callers(env: Env) -> None:
    run_pod(env, "secret-logs", "echo private; exec sleep 600")
    path = f"/containerLogs/{NS}/secret-logs/main"
    code, body = _agent_get(env, path, None)
    assert code == 401 and b"private" not in body
    assert json.loads(body)["reason"] == "Unauthorized"
    code, _ = _agent_get(env, path, "not-a-token")
    assert code == 401
    code, _ = _agent_get(env, "/stats/summary", None)
    assert code == 401
    code, body = _agent_get(env, path, env.cluster.token())
    assert code == 200 and body == b"private\n"
    code, body = _agent_get(env, "/metrics", env.cluster.token())
    assert code == 200
    assert re.search(
        rb'container_memory_working_set_bytes\{container="main",namespace="%s",pod="secret-logs"\} \d+'
        % NS.encode(),
        body,
    )
    summary = json.loads(_agent_get(env, "/stats/summary", env.cluster.token())[1])
    assert summary["node"]["memory"]["workingSetBytes"] > 0


def test_exec_tty_resize_over_websocket(env: Env) -> None:
    """What ``kubectl exec -it`` does on a terminal, spoken directly: tty=true, a resize on channel 4,
    the output on channel 1 only, then the Status on channel 3 and a normal close."""
    from websockets.sync.client import connect

    run_pod(env, "tty", "exec sleep 600")
    ctx = ssl.create_default_context(cafile=str(env.cluster.ca()))
    script = "sleep 0.5; stty size; echo err >&2"
    query = urllib.parse.urlencode(
        [
            ("command", "sh"),
            ("command", "-c"),
            ("command", script),
            ("stdin", "true"),
            ("stdout", "true"),
            ("tty", "true"),
        ]
    )
    url = f"wss://127.0.0.1:{env.cluster.port}/api/v1/namespaces/{NS}/pods/tty/exec?container=main&{query}"
    channels: dict[int, bytes] = {}
    with connect(
        url,
        ssl=ctx,
        subprotocols=["v5.channel.k8s.io"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {env.cluster.token()}"},
    ) as ws:
        assert ws.subprotocol == "v5.channel.k8s.io"
        ws.send(b'\x04{"Width":100,"Height":30}\n')
        for msg in ws:
            assert isinstance(msg, bytes)
            channels[msg[0]] = channels.get(msg[0], b"") + msg[1:]
    assert b"30 100" in channels.get(1, b"") and b"err" in channels[1], channels
    assert 2 not in channels
    assert json.loads(channels[3]) == {"metadata": {}, "status": "Success"}


def test_attach_stdin_reaches_the_container(env: Env) -> None:
    env.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "reader", "namespace": NS},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": env.image,
                        "stdin": True,
                        "command": ["sh", "-c", "while read line; do echo got:$line; done"],
                    }
                ],
            },
        }
    )
    wait_for(lambda: cstatus(pod(env.cluster, NS, "reader"), "main").get("state", {}).get("running"), 40)
    proc = subprocess.Popen(
        ["kubectl", "attach", "-i", "reader", "-n", NS],
        env=env.cluster.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        time.sleep(1.0)  # attached: output from now on
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        while line and not line.startswith("got:"):
            line = proc.stdout.readline()  # kubectl's "If you don't see a command prompt" notice
        assert line == "got:hello\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_logs_of_a_waiting_container(env: Env) -> None:
    env.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "noimage", "namespace": NS},
            "spec": {"containers": [{"name": "main", "image": env.registry.ref("test/missing", "v1")}]},
        }
    )

    def waiting() -> str | None:
        st = cstatus(pod(env.cluster, NS, "noimage"), "main")
        return str(st.get("state", {}).get("waiting", {}).get("reason", "")) or None

    wait_for(lambda: (waiting() or "").endswith("ImagePull") or waiting() == "ImagePullBackOff", 40)
    out = logs(env, "noimage", check=False)
    assert out.returncode != 0
    assert re.search(
        r'container "main" in pod "noimage" is waiting to start: (ErrImagePull|ImagePullBackOff)', out.stderr
    ), out.stderr
    ex = env.kubectl("exec", "noimage", "--", "true", check=False)
    assert ex.returncode != 0


def test_python_client_exec_and_logs(env: Env) -> None:
    """The official Python client: exec over WebSocket ``v4.channel.k8s.io`` (its only protocol),
    and the log subresource."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    run_pod(env, "pyclient", "echo from-pod; exec sleep 600")
    api = client.CoreV1Api(config.new_client_from_config(str(env.cluster.kubeconfig)))
    out = stream(
        api.connect_get_namespaced_pod_exec,
        "pyclient",
        NS,
        command=["sh", "-c", "echo $((6*7))"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert out == "42\n"
    resp = stream(
        api.connect_get_namespaced_pod_exec,
        "pyclient",
        NS,
        command=["sh", "-c", "exit 5"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 5
    text = wait_for(lambda: api.read_namespaced_pod_log("pyclient", NS), 20, "logs")
    assert text == "from-pod\n"


def test_exec_cp_and_attach_over_spdy(env: Env) -> None:
    """kubectl's SPDY/3.1 transport for exec, cp and attach (its fallback, forced with
    KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): bridged by the API server to the agent."""
    run_pod(env, "spdy", "i=0; while true; do echo beat$i; i=$((i+1)); sleep 0.3; done")
    spdy_env = {**env.cluster.env(), "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}

    def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "-n", NS, *args]
        return subprocess.run(cmd, env=spdy_env, input=input, capture_output=True, text=True, timeout=60)

    out = kubectl("exec", "spdy", "--", "sh", "-c", "echo out; echo err >&2")
    assert out.returncode == 0 and out.stdout == "out\n" and "err\n" in out.stderr, out
    assert kubectl("exec", "spdy", "--", "sh", "-c", "exit 4").returncode == 4
    verbose = kubectl("exec", "spdy", "-v=6", "--", "true")
    assert re.search(r"POST https://\S+/pods/spdy/exec\?\S* 101 Switching Protocols", verbose.stderr), (
        verbose.stderr
    )
    piped = kubectl("exec", "-i", "spdy", "--", "tr", "a-z", "A-Z", input="over spdy\n")
    assert piped.stdout == "OVER SPDY\n", piped
    dest = env.tmp / "spdy-passwd"
    assert kubectl("cp", f"{NS}/spdy:/etc/passwd", str(dest)).returncode == 0
    assert dest.read_text().startswith("root:")
    proc = subprocess.Popen(
        ["kubectl", "attach", "spdy", "-n", NS],
        env=spdy_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert re.fullmatch(r"beat\d+\n", proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)
