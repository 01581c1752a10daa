"""Helpers for the image tests: variants of built images, index pushes, fake registries."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubelite.agent.images import builder
from kubelite.agent.images.builder import Blob, Image

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def as_docker_schema2(image: Image) -> Image:
    """The same image with Docker schema2 media types (what `docker push` writes)."""
    config = Blob(DOCKER_CONFIG, image.config.data)
    layers = [Blob(DOCKER_LAYER, b.data) for b in image.layers]
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    return Image(config, layers, Blob(DOCKER_MANIFEST, json.dumps(doc).encode()), image.diff_ids)


def push_index(host: str, repo: str, tag: str, images: dict[str, Image], media_type: str) -> str:
    """Push each image by digest and an index/manifest list naming them by ``arch``; returns its digest."""
    entries = []
    for arch, img in images.items():
        builder.push(img, host, repo, img.digest)
        entries.append({**img.manifest.descriptor(), "platform": {"os": "linux", "architecture": arch}})
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    index = Blob(media_type, json.dumps(doc).encode())
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        data=index.data,
        method="PUT",
        headers={"Content-Type": media_type},
    )
    urllib.request.urlopen(req, timeout=10).close()
    return index.digest


Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def fake_server(handle: Handler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 calling ``handle`` for every request; yields ``host:port``."""

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        do_HEAD = do_GET
        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def reply(h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    h.send_response(code)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def proxy(h: BaseHTTPRequestHandler, upstream: str) -> None:
    """Forward the request to the real registry (keeping Accept) and relay the answer."""
    req = urllib.request.Request(
        f"http://{upstream}{h.path}", method=h.command, headers={"Accept": h.headers.get("Accept", "*/*")}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body, code, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        body, code, hdrs = e.read(), e.code, dict(e.headers)
    keep = ("Content-Type", "Docker-Content-Digest")
    reply(h, code, body, {k: v for k, v in hdrs.items() if k in keep})
