"""The busybox image builder against a real docker-registry: push, then pull back by digest."""

from __future__ import annotations

import hashlib
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from kubelite.agent.images import builder
from tests.registry import running_registry

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def _get(url: str, accept: str = ACCEPT) -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), dict(r.headers)


def test_builds_reproducibly() -> None:
    a = builder.busybox_image({"www/index.html": b"hi"})
    b = builder.busybox_image({"www/index.html": b"hi"})
    assert a.digest == b.digest
    c = builder.busybox_image({"www/index.html": b"other"})
    assert c.digest != a.digest


def test_push_and_pull_back(tmp_path: Path) -> None:
    img = builder.busybox_image({"www/index.html": b"hello"}, cmd=["httpd", "-f"])
    with running_registry(tmp_path) as reg:
        digest = builder.push(img, reg.host, "demo/busybox", "v1")
        body, headers = _get(f"http://{reg.host}/v2/demo/busybox/manifests/v1")
        assert headers["Docker-Content-Digest"] == digest == "sha256:" + hashlib.sha256(body).hexdigest()
        manifest = json.loads(body)
        assert len(manifest["layers"]) == 2
        cfg, _ = _get(f"http://{reg.host}/v2/demo/busybox/blobs/{manifest['config']['digest']}", "*/*")
        assert json.loads(cfg)["config"]["Cmd"] == ["httpd", "-f"]
        # pushing again only HEADs the blobs and re-puts the manifest
        assert builder.push(img, reg.host, "demo/busybox", "v1") == digest


def test_oci_archive_layout(tmp_path: Path) -> None:
    img = builder.busybox_image()
    out = tmp_path / "img.tar"
    builder.write_oci_archive(img, out, "demo:v1")
    with tarfile.open(out) as t:
        names = set(t.getnames())
        index = json.loads(t.extractfile("index.json").read())  # type: ignore[union-attr]
    assert "oci-layout" in names
    assert index["manifests"][0]["digest"] == img.digest
    assert f"blobs/sha256/{img.digest.split(':')[1]}" in names


def test_busybox_layer_has_applets() -> None:
    blob, diff_id = builder.busybox_layer()
    import gzip
    import io

    raw = gzip.decompress(blob.data)
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        sh = t.getmember("bin/sh")
        assert sh.issym() and sh.linkname == "busybox"
        assert t.getmember("tmp").mode == 0o1777


@pytest.mark.parametrize("path", ["bin/busybox"])
def test_busybox_is_executable(path: str) -> None:
    blob, _ = builder.busybox_layer()
    import gzip
    import io

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as t:
        assert t.getmember(path).mode & 0o111
