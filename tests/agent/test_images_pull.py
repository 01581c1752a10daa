"""Pulling from a real docker-registry (and from fakes for auth and misbehaving registries)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from kubelite.agent.images import builder
from kubelite.agent.images.distribution import (
    OCI_INDEX,
    BadResponseError,
    DigestError,
    NotFoundError,
    RegistryClient,
    RegistryUnavailableError,
    UnauthorizedError,
)
from kubelite.agent.images.reference import InvalidReferenceError, parse
from kubelite.agent.images.service import LocalImageService, auth_from_pull_secrets
from kubelite.agent.runtime.base import ImageNeverPullError, RegistryAuth
from tests.agent.images_helpers import (
    DOCKER_LIST,
    as_docker_schema2,
    fake_server,
    proxy,
    push_index,
    reply,
)
from tests.registry import Registry, running_registry

Images = dict[str, builder.Image]


@pytest.fixture(scope="module")
def images() -> dict[str, builder.Image]:
    base = builder.busybox_layer()
    return {
        "v1": builder.make_image([base, builder.files_layer({"www/index.html": b"v1"})], cmd=["httpd", "-f"]),
        "v2": builder.make_image([base, builder.files_layer({"www/index.html": b"v2"})], cmd=["sh"]),
        "arm": builder.make_image([builder.files_layer({"arch": b"arm64"})], arch="arm64"),
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("reg")) as reg:
        yield reg


def pull(svc: LocalImageService, ref: str, policy: str = "IfNotPresent", **kw: object):  # type: ignore[no-untyped-def]
    return asyncio.run(svc.pull(ref, policy=policy, **kw))  # type: ignore[arg-type]


def test_pull_by_tag_and_digest(tmp_path: Path, registry: Registry, images: Images) -> None:
    img = images["v1"]
    builder.push(img, registry.host, "t/tag", "v1")
    svc = LocalImageService(tmp_path)
    got = pull(svc, registry.ref("t/tag", "v1"))
    assert got.digest == img.digest
    assert got.ref == f"{registry.host}/t/tag:v1"
    assert got.cmd == ("httpd", "-f") and got.env and got.entrypoint == ()
    assert len(got.layers) == 2
    assert all(Path(p).is_dir() for p in got.layers)
    assert (Path(got.layers[0]) / "bin" / "busybox").stat().st_size > 100_000
    assert (Path(got.layers[1]) / "www" / "index.html").read_bytes() == b"v1"
    by_digest = pull(svc, f"{registry.host}/t/tag@{img.digest}")
    assert by_digest.digest == img.digest and by_digest.layers == got.layers
    assert got.size == by_digest.size > 1000
    # the layers are shared, not unpacked twice
    assert len(list((tmp_path / "images" / "layers" / "sha256").iterdir())) == 2
    assert asyncio.run(svc.get(f"{registry.host}/t/tag@{img.digest}")) is not None


def test_docker_schema2_media_types(tmp_path: Path, registry: Registry, images: Images) -> None:
    img = as_docker_schema2(images["v2"])
    builder.push(img, registry.host, "t/schema2", "v2")
    got = pull(LocalImageService(tmp_path), registry.ref("t/schema2", "v2"))
    assert got.digest == img.digest
    assert (Path(got.layers[1]) / "www" / "index.html").read_bytes() == b"v2"


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_manifest_list_picks_host_platform(
    tmp_path: Path, registry: Registry, images: Images, media_type: str
) -> None:
    amd = images["v1"] if media_type == OCI_INDEX else as_docker_schema2(images["v1"])
    index_digest = push_index(
        registry.host, "t/multi", "latest", {"arm64": images["arm"], "amd64": amd}, media_type
    )
    got = pull(LocalImageService(tmp_path), f"{registry.host}/t/multi")
    assert got.digest == index_digest  # imageID names what the tag points to, as containerd reports it
    assert (Path(got.layers[-1]) / "www" / "index.html").exists()
    assert not any((Path(p) / "arch").exists() for p in got.layers)


def test_index_without_our_platform(tmp_path: Path, registry: Registry, images: Images) -> None:
    push_index(registry.host, "t/armonly", "v1", {"arm64": images["arm"]}, OCI_INDEX)
    with pytest.raises(NotFoundError, match=r"no image for platform linux/amd64 .*\(it has linux/arm64\)"):
        pull(LocalImageService(tmp_path), registry.ref("t/armonly", "v1"))


def test_always_follows_a_moved_tag(tmp_path: Path, registry: Registry, images: Images) -> None:
    ref = registry.ref("t/moving", "stable")
    builder.push(images["v1"], registry.host, "t/moving", "stable")
    svc = LocalImageService(tmp_path)
    assert pull(svc, ref).digest == images["v1"].digest
    builder.push(images["v2"], registry.host, "t/moving", "stable")
    assert pull(svc, ref, "IfNotPresent").digest == images["v1"].digest  # present: registry not asked
    moved = pull(svc, ref, "Always")
    assert moved.digest == images["v2"].digest
    assert (Path(moved.layers[1]) / "www" / "index.html").read_bytes() == b"v2"
    assert pull(svc, ref, "Always").digest == images["v2"].digest
    assert asyncio.run(svc.get(ref)).digest == images["v2"].digest  # type: ignore[union-attr]


def test_if_not_present_works_with_the_registry_gone(tmp_path: Path, images: Images) -> None:
    with running_registry(tmp_path / "reg") as reg:
        ref = reg.ref("t/offline", "v1")
        builder.push(images["v1"], reg.host, "t/offline", "v1")
        first = pull(LocalImageService(tmp_path / "node"), ref)
    svc = LocalImageService(tmp_path / "node")  # a restarted agent: state comes from disk
    assert pull(svc, ref, "IfNotPresent") == first
    assert pull(svc, ref, "Never") == first
    with pytest.raises(RegistryUnavailableError, match="cannot connect to registry"):
        pull(svc, ref, "Always")


def test_never_without_the_image(tmp_path: Path) -> None:
    with pytest.raises(
        ImageNeverPullError, match='Container image "nope:1" is not present with pull policy of Never'
    ):
        pull(LocalImageService(tmp_path), "nope:1", "Never")


def test_missing_image_and_invalid_reference(tmp_path: Path, registry: Registry) -> None:
    svc = LocalImageService(tmp_path)
    with pytest.raises(NotFoundError) as e:
        pull(svc, registry.ref("t/does-not-exist", "v9"))
    msg = str(e.value)
    assert "not found" in msg and f"{registry.host}/t/does-not-exist:v9" in msg
    with pytest.raises(InvalidReferenceError, match="must be lowercase"):
        pull(svc, f"{registry.host}/Bad/Name:v1")
    with pytest.raises(Exception, match="unknown imagePullPolicy"):
        pull(svc, "busybox", "Sometimes")


def test_concurrent_pulls_share_one_download(tmp_path: Path, registry: Registry, images: Images) -> None:
    builder.push(images["v1"], registry.host, "t/conc", "v1")
    builder.push(images["v2"], registry.host, "t/conc", "v2")
    svc = LocalImageService(tmp_path)

    async def both() -> list[str]:
        refs = [registry.ref("t/conc", "v1"), registry.ref("t/conc", "v1"), registry.ref("t/conc", "v2")]
        return [p.digest for p in await asyncio.gather(*(svc.pull(r) for r in refs))]

    assert asyncio.run(both()) == [images["v1"].digest, images["v1"].digest, images["v2"].digest]
    assert len(list((tmp_path / "images" / "layers" / "sha256").iterdir())) == 3  # busybox layer shared
    assert not list((tmp_path / "images" / "tmp").iterdir())


def test_corrupt_blob_in_registry(tmp_path: Path, images: Images) -> None:
    img = images["v2"]
    with running_registry(tmp_path / "reg") as reg:
        builder.push(img, reg.host, "t/corrupt", "v1")
        small = img.layers[1]
        hexd = small.digest.split(":")[1]
        data = reg.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
        data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))  # same size, wrong content
        svc = LocalImageService(tmp_path / "node")
        with pytest.raises(DigestError, match=rf"blob {small.digest} .* failed verification"):
            pull(svc, reg.ref("t/corrupt", "v1"))
    store = tmp_path / "node" / "images"
    assert not (store / "blobs" / "sha256" / hexd).exists()
    assert not list((store / "tmp").iterdir())
    assert asyncio.run(svc.get(reg.ref("t/corrupt", "v1"))) is None


def test_registry_answering_garbage(tmp_path: Path) -> None:
    def nonsense(h: BaseHTTPRequestHandler) -> None:
        reply(h, 200, b"<html>hello, I am a wiki</html>", {"Content-Type": "text/html"})

    with (
        fake_server(nonsense) as host,
        pytest.raises(BadResponseError, match=r"not an image manifest.*text/html"),
    ):
        pull(LocalImageService(tmp_path), f"{host}/x/y:1")


def test_registry_that_is_not_http(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        for _ in range(3):
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(BadResponseError, match="did not answer with valid HTTP"):
            pull(LocalImageService(tmp_path), f"127.0.0.1:{srv.getsockname()[1]}/x/y:1")
    finally:
        srv.close()


def test_manifest_digest_mismatch(tmp_path: Path, registry: Registry, images: Images) -> None:
    builder.push(images["v1"], registry.host, "t/lying", "v1")

    def lying(h: BaseHTTPRequestHandler) -> None:  # claims a digest its body does not have
        if "/manifests/" in h.path and h.command == "GET":
            body = json.dumps({"schemaVersion": 2, "layers": [], "config": {}}).encode()
            reply(h, 200, body, {"Content-Type": OCI_INDEX, "Docker-Content-Digest": images["v1"].digest})
        else:
            proxy(h, registry.host)

    with fake_server(lying) as host, pytest.raises(DigestError, match="corrupt or tampered"):
        pull(LocalImageService(tmp_path), f"{host}/t/lying:v1")


def _token_registry(upstream: str, scheme: str, seen: list[str]):  # type: ignore[no-untyped-def]
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        host = h.headers["Host"]
        authz = h.headers.get("Authorization", "")
        if h.path.startswith("/token"):
            seen.append(h.path)
            if authz == good:
                reply(h, 200, json.dumps({"token": "tok-123"}).encode())
            else:
                reply(h, 401, b"{}")
            return
        ok = authz == ("Bearer tok-123" if scheme == "bearer" else good)
        if not ok:
            challenge = (
                f'Bearer realm="http://{host}/token",service="fake",scope="repository:t/auth:pull"'
                if scheme == "bearer"
                else 'Basic realm="fake"'
            )
            reply(
                h,
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                {"WWW-Authenticate": challenge},
            )
            return
        proxy(h, upstream)

    return handle


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_registry_auth(tmp_path: Path, registry: Registry, images: Images, scheme: str) -> None:
    builder.push(images["v1"], registry.host, "t/auth", "v1")
    seen: list[str] = []
    with fake_server(_token_registry(registry.host, scheme, seen)) as host:
        ref = f"{host}/t/auth:v1"
        with pytest.raises(UnauthorizedError, match="t/auth"):
            pull(LocalImageService(tmp_path / "anon"), ref)
        secret = {
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": base64.b64encode(
                    json.dumps(
                        {"auths": {f"http://{host}": {"auth": base64.b64encode(b"alice:s3cret").decode()}}}
                    ).encode()
                ).decode()
            },
        }
        auth = auth_from_pull_secrets([secret])
        assert auth == {host: RegistryAuth("alice", "s3cret")}
        got = pull(LocalImageService(tmp_path / "authed"), ref, auth=auth)
        assert got.digest == images["v1"].digest
        bad = {host: RegistryAuth("alice", "wrong")}
        with pytest.raises(UnauthorizedError):
            pull(LocalImageService(tmp_path / "bad"), ref, auth=bad)
    if scheme == "bearer":
        assert any("scope=repository%3At%2Fauth%3Apull" in p and "service=fake" in p for p in seen)


def test_auth_from_pull_secrets_variants() -> None:
    def enc(doc: object) -> str:
        return base64.b64encode(json.dumps(doc).encode()).decode()

    secrets = [
        {"type": "Opaque", "data": {".dockerconfigjson": enc({"auths": {"x.io": {"auth": "eDp5"}}})}},
        {
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": enc(
                    {
                        "auths": {
                            "https://index.docker.io/v1/": {"username": "u", "password": "p"},
                            "reg.example:5000": {"auth": base64.b64encode(b"a:b:c").decode()},
                            "tok.example": {"identitytoken": "idt"},
                        }
                    }
                )
            },
        },
        {"type": "kubernetes.io/dockercfg", "data": {".dockercfg": enc({"old.example": {"auth": "bzpw"}})}},
        {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "!!!not base64"}},
    ]
    assert auth_from_pull_secrets(secrets) == {
        "docker.io": RegistryAuth("u", "p"),
        "reg.example:5000": RegistryAuth("a", "b:c"),
        "tok.example": RegistryAuth("", "", "idt"),
        "old.example": RegistryAuth("o", "p"),
    }


def test_plain_http_only_for_loopback_and_insecure() -> None:
    client = RegistryClient(insecure=["my.registry:5000"])
    try:
        assert client.base_url(parse("127.0.0.1:5000/a")).startswith("http://127.0.0.1:5000/v2/a")
        assert client.base_url(parse("localhost:5000/a")).startswith("http://")
        assert client.base_url(parse("[::1]:5000/a")).startswith("http://")
        assert client.base_url(parse("my.registry:5000/a")).startswith("http://")
        assert client.base_url(parse("other.registry/a")).startswith("https://other.registry/v2/a")
        assert client.base_url(parse("busybox")) == "https://registry-1.docker.io/v2/library/busybox"
    finally:
        asyncio.run(client.aclose())
