"""Importing OCI archives and docker-save tarballs, garbage collection, and the ``kubelite images`` CLI."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path

import pytest

from kubelite.agent.images import builder
from kubelite.agent.images.importer import ArchiveError, import_image_object, import_images
from kubelite.agent.images.service import LocalImageService
from kubelite.agent.images.store import ImageStore
from kubelite.cli import main
from tests.registry import running_registry


@pytest.fixture(scope="module")
def image() -> builder.Image:
    return builder.busybox_image({"www/index.html": b"imported"}, cmd=["httpd", "-f"], workdir="/www")


def docker_save(image: builder.Image, out: Path, tags: list[str]) -> None:
    """A `docker save` tarball: manifest.json + config + one uncompressed layer.tar per layer."""
    import gzip

    with tarfile.open(out, "w") as t:

        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))

        cfg_name = image.config.digest.split(":")[1] + ".json"
        add(cfg_name, image.config.data)
        layers = []
        for i, blob in enumerate(image.layers):
            add(f"l{i}/layer.tar", gzip.decompress(blob.data))
            layers.append(f"l{i}/layer.tar")
        add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": tags, "Layers": layers}]).encode())
        add("repositories", b"{}")


def test_import_oci_archive_and_layout(tmp_path: Path, image: builder.Image) -> None:
    store = ImageStore(tmp_path / "images")
    archive = tmp_path / "img.tar"
    builder.write_oci_archive(image, archive, "kubelite.local/demo:v1")
    [rec] = import_images(store, archive)
    assert rec.ref == "kubelite.local/demo:v1" and rec.digest == image.digest
    svc = LocalImageService(tmp_path, store=store)
    got = asyncio.run(svc.pull("kubelite.local/demo:v1", policy="Never"))
    assert got.cmd == ("httpd", "-f") and got.working_dir == "/www"
    assert (Path(got.layers[1]) / "www" / "index.html").read_bytes() == b"imported"
    layout = tmp_path / "layout"
    builder.write_oci_layout(image, layout, "v2")
    with pytest.raises(ArchiveError, match="names only the tag 'v2'"):
        import_images(store, layout)
    [rec2] = import_images(store, layout, "example.org/demo")
    assert rec2.ref == "example.org/demo:v2"
    assert len(list((tmp_path / "images" / "layers" / "sha256").iterdir())) == 2  # shared layers


def test_import_docker_save(tmp_path: Path, image: builder.Image) -> None:
    store = ImageStore(tmp_path / "images")
    tarball = tmp_path / "saved.tar"
    docker_save(image, tarball, ["busybox:saved", "example.org/x:1"])
    recs = import_images(store, tarball)
    assert [r.ref for r in recs] == ["docker.io/library/busybox:saved", "example.org/x:1"]
    got = asyncio.run(LocalImageService(tmp_path, store=store).pull("busybox:saved", policy="Never"))
    assert (Path(got.layers[1]) / "www" / "index.html").read_bytes() == b"imported"
    assert (Path(got.layers[0]) / "bin" / "busybox").exists()


def test_import_rejects_bad_archives(tmp_path: Path, image: builder.Image) -> None:
    store = ImageStore(tmp_path / "images")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar")
    with pytest.raises(ArchiveError, match="not a tar archive"):
        import_images(store, junk)
    layout = tmp_path / "layout"
    builder.write_oci_layout(image, layout, "example.org/demo:v1")
    victim = layout / "blobs" / "sha256" / image.layers[1].digest.split(":")[1]
    victim.write_bytes(b"tampered")
    with pytest.raises(Exception, match="content has digest"):
        import_images(store, layout)
    assert store.list_images() == []


def test_gc_by_disk_threshold(tmp_path: Path, image: builder.Image) -> None:
    store = ImageStore(tmp_path / "images")
    other = builder.busybox_image({"x": b"other"})
    a = import_image_object(store, image, "example.org/a:1")
    b = import_image_object(store, other, "example.org/b:1")
    store.touch(b.ref)  # b used most recently
    layers = tmp_path / "images" / "layers" / "sha256"
    assert len(list(layers.iterdir())) == 3
    assert store.gc(set(), 85, 80, usage=lambda: (100, 50)) == []  # below the high threshold
    removed = store.gc({b.ref}, 85, 80, usage=lambda: (100, 90))
    assert removed == [a.ref]
    assert [r.ref for r in store.list_images()] == [b.ref]
    assert len(list(layers.iterdir())) == 2  # a's own layer is gone; the shared busybox layer stays
    assert store.gc({b.image_id}, 85, 80, usage=lambda: (100, 99)) == []  # in use (by image ID)


def test_cli_round_trip(tmp_path: Path, image: builder.Image, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["images", "build-busybox", "kubelite.local/busybox:1", *data]) == 0
    with running_registry(tmp_path / "reg") as reg:
        builder.push(image, reg.host, "cli/demo", "v1")
        assert main(["images", "pull", reg.ref("cli/demo", "v1"), *data]) == 0
        capsys.readouterr()
        assert main(["images", "pull", reg.ref("cli/none", "v1"), *data]) == 1
        assert "kubelite images pull: manifest not found" in capsys.readouterr().err
    archive = tmp_path / "img.tar"
    builder.write_oci_archive(image, archive, "v3")
    assert main(["images", "import", str(archive), "--name", "example.org/imp", *data]) == 0
    capsys.readouterr()
    assert main(["images", "ls", *data]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["REFERENCE", "DIGEST", "SIZE", "LAYERS"]
    for ref in ("kubelite.local/busybox:1", f"{reg.host}/cli/demo:v1", "example.org/imp:v3"):
        assert ref in out
    assert main(["images", "rm", "example.org/imp:v3", f"{reg.host}/cli/demo:v1", *data]) == 0
    assert main(["images", "rm", "example.org/imp:v3", *data]) == 1
    assert "no image example.org/imp:v3" in capsys.readouterr().err
    assert main(["images", "ls", "-q", *data]) == 0
    assert capsys.readouterr().out.split() == ["kubelite.local/busybox:1"]
    # `kubelite images --data-dir D` is the store of `kubelite up --data-dir D`'s agent
    assert len(list((tmp_path / "data" / "agent" / "images" / "layers" / "sha256").iterdir())) == 1


def test_pull_backoff_doubles_to_five_minutes() -> None:
    from kubelite.agent.images.backoff import PullBackOff, backoff_message

    now = [0.0]
    b = PullBackOff(clock=lambda: now[0])
    assert b.waiting("pod/img") == 0
    assert [b.failed("pod/img") for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert b.waiting("pod/img") == 300
    now[0] = 299.5
    assert b.waiting("pod/img") == pytest.approx(0.5)
    now[0] = 299.5 + 601
    assert b.failed("pod/img") == 10  # the last failure is older than 2 x max: start over
    b.succeeded("pod/img")
    assert b.waiting("pod/img") == 0
    assert backoff_message("x:1") == 'Back-off pulling image "x:1"'


def test_prune_spares_a_pull_in_progress(tmp_path: Path, image: builder.Image) -> None:
    store = ImageStore(tmp_path / "images")
    digest = store.put_blob(b"half-pulled")
    with store.lease([digest]):
        store.prune()
        assert store.has_blob(digest)
    store.prune()
    assert not store.has_blob(digest)
