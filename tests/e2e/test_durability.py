"""Durability: ``kill -9`` a real ``kubelite up`` in the middle of a burst of concurrent writes.

What kube-apiserver on etcd promises, and what this checks: a write acknowledged with a 2xx is
durable (it survives the crash), the database opens cleanly afterwards, the cluster comes back
with the same CA (old kubeconfigs keep working), and a client resumes with list + watch.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import ssl
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e

BURST = 1000
KILL_AFTER = 300
WORKERS = 32
JSON_CT = {"content-type": "application/json"}


def _ssl(cluster: Cluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.ca()))


def _headers(cluster: Cluster) -> dict[str, str]:
    return {"authorization": f"Bearer {cluster.token()}"}


def _cm(name: str, run: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"burst": run}},
        "data": {"payload": name * 8},
    }


def _burst(cluster: Cluster, run: str) -> tuple[set[str], int]:
    """Fire BURST creates from WORKERS concurrent connections; SIGKILL the server's process group
    once KILL_AFTER are acknowledged. Returns the acknowledged names and how many requests failed."""
    acked: set[str] = set()
    failed: list[str] = []
    lock = threading.Lock()
    local = threading.local()
    clients: list[httpx.Client] = []
    path = "/api/v1/namespaces/default/configmaps"

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=cluster.url(), verify=_ssl(cluster), headers=_headers(cluster), timeout=30
            )
            with lock:
                clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    def create(i: int) -> None:
        name = f"{run}-{i:04d}"
        try:
            res = client().post(path, content=orjson.dumps(_cm(name, run)), headers=JSON_CT)
        except httpx.HTTPError:
            failed.append(name)
            return
        if not 200 <= res.status_code < 300:
            failed.append(name)
            return
        with lock:
            acked.add(name)
            if len(acked) == KILL_AFTER:
                os.killpg(cluster.proc.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(create, range(BURST)))
    finally:
        for c in clients:
            c.close()
    return acked, len(failed)


def _integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def _copy_db(data_dir: Path, into: Path) -> Path:
    """A copy of the database files exactly as the crash left them (WAL included)."""
    for suffix in ("", "-wal", "-shm"):
        src = data_dir / f"state.db{suffix}"
        if src.exists():
            shutil.copy2(src, into / src.name)
    return into / "state.db"


def _list(client: httpx.Client, run: str) -> tuple[set[str], str]:
    names: set[str] = set()
    cont = ""
    rv = ""
    while True:
        params = {"labelSelector": f"burst={run}", "limit": "250"}
        if cont:
            params["continue"] = cont
        res = client.get("/api/v1/namespaces/default/configmaps", params=params)
        assert res.status_code == 200, res.text
        body = res.json()
        names.update(i["metadata"]["name"] for i in body["items"])
        rv = rv or body["metadata"]["resourceVersion"]
        cont = body["metadata"].get("continue", "")
        if not cont:
            return names, rv


def _watch_for_added(cluster: Cluster, run: str, rv: str, want: str, seen: list[dict[str, Any]]) -> None:
    params = {"watch": "1", "resourceVersion": rv, "labelSelector": f"burst={run}", "timeoutSeconds": "15"}
    with (
        httpx.Client(
            base_url=cluster.url(), verify=_ssl(cluster), headers=_headers(cluster), timeout=30
        ) as c,
        c.stream("GET", "/api/v1/namespaces/default/configmaps", params=params) as res,
    ):
        assert res.status_code == 200
        for line in res.iter_lines():
            if not line.strip():
                continue
            ev = orjson.loads(line)
            seen.append(ev)
            if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == want:
                return


def test_kill_9_mid_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir)
    ca_before = first.ca().read_bytes()
    old_kubeconfig = tmp_path / "old-kubeconfig.yaml"
    shutil.copy(first.kubeconfig, old_kubeconfig)
    run = f"burst-{uuid.uuid4().hex[:6]}"
    try:
        acked, failed = _burst(first, run)
        assert first.proc.wait(10) == -signal.SIGKILL
    finally:
        stop_cluster(first)
    assert len(acked) >= KILL_AFTER, f"only {len(acked)} acknowledged before the burst ended"
    assert failed > 0, "the kill landed after the burst: nothing was in flight"

    with tempfile.TemporaryDirectory() as crash_copy:
        assert _integrity(_copy_db(data_dir, Path(crash_copy))) == "ok"

    second = start_cluster(data_dir, port=first.port)
    try:
        assert second.ca().read_bytes() == ca_before
        with httpx.Client(
            base_url=second.url(), verify=_ssl(second), headers=_headers(second), timeout=30
        ) as client:
            stored, rv = _list(client, run)
            missing = acked - stored
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
            assert stored <= {f"{run}-{i:04d}" for i in range(BURST)}
            for name in sorted(acked)[:5]:
                got = client.get(f"/api/v1/namespaces/default/configmaps/{name}").json()
                assert got["data"] == {"payload": name * 8}

            # A client resumes: list, then watch from the list's resourceVersion.
            seen: list[dict[str, Any]] = []
            after = f"{run}-after"
            watcher = threading.Thread(target=_watch_for_added, args=(second, run, rv, after, seen))
            watcher.start()
            created = client.post("/api/v1/namespaces/default/configmaps", json=_cm(after, run))
            assert created.status_code == 201, created.text
            watcher.join(20)
            assert not watcher.is_alive()
            assert [e["type"] for e in seen] == ["ADDED"], seen
            assert seen[0]["object"]["metadata"]["name"] == after
            assert int(seen[0]["object"]["metadata"]["resourceVersion"]) > int(rv)

        # The kubeconfig written before the crash still works (same CA, same token).
        res = second.kubectl("--kubeconfig", str(old_kubeconfig), "get", "cm", f"{run}-after", "-o", "name")
        assert res.stdout.strip() == f"configmap/{run}-after"
    finally:
        assert stop_cluster(second) == 0
    assert _integrity(data_dir / "state.db") == "ok"
