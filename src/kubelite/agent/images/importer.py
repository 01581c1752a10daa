"""Import images without a registry: OCI image layouts (directory or tar) and ``docker save`` tarballs.

This is ``ctr images import`` / ``docker load`` for the node's store, so air-gapped nodes and
the offline demo have images.  An OCI layout names its images with the
``io.containerd.image.name`` or ``org.opencontainers.image.ref.name`` annotation (a bare tag
needs a repository given by the caller); a ``docker save`` tarball lists ``RepoTags`` in its
``manifest.json``, its layers are plain tars, and a Docker schema2 manifest is made for it (as
containerd does).  Every blob is verified against its digest before it enters the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kubelite.agent.images import reference
from kubelite.agent.images.distribution import host_platform
from kubelite.agent.images.store import ImageRecord, ImageStore
from kubelite.agent.runtime.base import ImagePullError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


class ArchiveError(ImagePullError):
    """The archive is not an OCI layout or a docker-save tarball, or its content is inconsistent."""


class _Source:
    """Read files by relative path from a directory or a tar archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if path.is_file():
            try:
                self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed in close()
            except tarfile.TarError as e:
                raise ArchiveError(f"{path}: not a tar archive ({e})") from e
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isreg()}
        elif not path.is_dir():
            raise ArchiveError(f"{path}: no such file or directory")

    def exists(self, name: str) -> bool:
        return name in self.members if self.tar else (self.path / name).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if "/../" in f"/{name}/" or name.startswith("/"):
            raise ArchiveError(f"{self.path}: refusing path {name!r} outside the archive")
        if self.tar is not None:
            member = self.members.get(name)
            f = self.tar.extractfile(member) if member else None
            if f is None:
                raise ArchiveError(f"{self.path}: {name} is missing from the archive")
            with f:
                yield f
        else:
            try:
                with (self.path / name).open("rb") as fh:
                    yield fh
            except FileNotFoundError:
                raise ArchiveError(f"{self.path}: {name} is missing") from None

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ArchiveError(f"{self.path}: {name} is not valid JSON ({e})") from e

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _copy_blob(store: ImageStore, src: _Source, name: str, digest: str | None) -> tuple[str, int]:
    """Copy a file into the blob store, verifying ``digest`` when known; returns (digest, size)."""
    tmp = store.temp_path(".import")
    sha = hashlib.sha256()
    size = 0
    with src.open(name) as f, tmp.open("wb") as out:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
            out.write(chunk)
    actual = "sha256:" + sha.hexdigest()
    store.commit_blob(tmp, digest or actual, None)
    return actual, size


def _oci_blob(store: ImageStore, src: _Source, digest: str) -> None:
    if not store.has_blob(digest):
        algo, _, hexpart = digest.partition(":")
        _copy_blob(store, src, f"blobs/{algo}/{hexpart}", digest)


def _finish(store: ImageStore, ref: str, digest: str, manifest_digest: str) -> ImageRecord:
    manifest = json.loads(store.read_blob(manifest_digest))
    cfg_digest = manifest["config"]["digest"]
    diff_ids = json.loads(store.read_blob(cfg_digest))["rootfs"]["diff_ids"]
    layers = [(d["digest"], diff) for d, diff in zip(manifest["layers"], diff_ids, strict=True)]
    for i, (blob, diff) in enumerate(layers):
        store.unpack(blob, diff, diff_ids[:i])
    size = manifest["config"].get("size", 0) + sum(d.get("size", 0) for d in manifest["layers"])
    now = time.time()
    record = ImageRecord(ref, digest, manifest_digest, cfg_digest, layers, size, now, now)
    store.put_image(record)
    return record


def _ref_for(entry: dict[str, Any], name: str | None) -> str:
    annotations = entry.get("annotations") or {}
    value = next((annotations[k] for k in NAME_ANNOTATIONS if annotations.get(k)), "")
    if name:
        parsed = reference.parse(name, default_tag=False)
        if not parsed.tag and not parsed.digest and value and "/" not in value and ":" not in value:
            return str(reference.parse(f"{name}:{value}"))
        return str(reference.parse(name))
    if not value:
        raise ArchiveError("the OCI layout does not name its image; pass a reference (--name)")
    if "/" not in value and ":" not in value:
        raise ArchiveError(f"the OCI layout names only the tag {value!r}; pass a repository (--name)")
    return str(reference.parse(value))


def _import_oci(store: ImageStore, src: _Source, name: str | None) -> list[ImageRecord]:
    index = src.json("index.json")
    records = []
    for entry in index.get("manifests") or []:
        digest = entry["digest"]
        _oci_blob(store, src, digest)
        doc = json.loads(store.read_blob(digest))
        manifest_digest = digest
        if "manifests" in doc:  # an image index: take this machine's platform
            manifest_digest = _pick(doc, digest)
            _oci_blob(store, src, manifest_digest)
            doc = json.loads(store.read_blob(manifest_digest))
        for desc in [doc["config"], *doc["layers"]]:
            _oci_blob(store, src, desc["digest"])
        records.append(_finish(store, _ref_for(entry, name), digest, manifest_digest))
    if not records:
        raise ArchiveError(f"{src.path}: the OCI layout's index.json lists no images")
    return records


def _pick(index: dict[str, Any], digest: str) -> str:
    want_os, want_arch, _ = host_platform()
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") or {}
        if plat.get("os", want_os) == want_os and plat.get("architecture", want_arch) == want_arch:
            return str(entry["digest"])
    raise ArchiveError(f"image index {digest} has no manifest for {want_os}/{want_arch}")


def _import_docker(store: ImageStore, src: _Source, name: str | None) -> list[ImageRecord]:
    entries = src.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError(f"{src.path}: manifest.json lists no images")
    records = []
    for entry in entries:
        cfg_raw = src.read(entry["Config"])
        cfg_digest = store.put_blob(cfg_raw)
        diff_ids = json.loads(cfg_raw)["rootfs"]["diff_ids"]
        layers = []
        for layer_name, diff in zip(entry["Layers"], diff_ids, strict=True):
            digest, size = _copy_blob(store, src, layer_name, None)
            if digest != diff:  # docker save layers are uncompressed: digest == diff_id
                raise ArchiveError(
                    f"{src.path}: layer {layer_name} has digest {digest}, the config says {diff}"
                )
            layers.append({"mediaType": DOCKER_LAYER_TAR, "digest": digest, "size": size})
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": cfg_digest, "size": len(cfg_raw)},
            "layers": layers,
        }
        manifest_digest = store.put_blob(json.dumps(manifest, separators=(",", ":")).encode())
        tags = [name] if name else list(entry.get("RepoTags") or [])
        if not tags:
            raise ArchiveError(
                f"{src.path}: image {entry['Config']} has no RepoTags; pass a reference (--name)"
            )
        for tag in tags:
            records.append(_finish(store, str(reference.parse(tag)), manifest_digest, manifest_digest))
    return records


def import_images(store: ImageStore, path: Path, name: str | None = None) -> list[ImageRecord]:
    """Import every image of an OCI layout (dir or tar) or a ``docker save`` tarball."""
    src = _Source(path)
    try:
        if src.exists("oci-layout") and src.exists("index.json"):
            if src.exists("manifest.json") and not name:
                return _import_docker(store, src, name)  # docker >= 25 writes both; RepoTags name them
            return _import_oci(store, src, name)
        if src.exists("manifest.json"):
            return _import_docker(store, src, name)
        raise ArchiveError(
            f"{path}: neither an OCI image layout (oci-layout, index.json) nor a docker save archive"
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ImagePullError):
            raise
        raise ArchiveError(f"{path}: malformed image archive ({type(e).__name__}: {e})") from e
    finally:
        src.close()


def import_image_object(store: ImageStore, image: Any, ref: str) -> ImageRecord:
    """Import a :class:`kubelite.agent.images.builder.Image` built in memory under ``ref``."""
    for blob in [image.config, *image.layers, image.manifest]:
        store.put_blob(blob.data, blob.digest)
    return _finish(store, str(reference.parse(ref)), image.digest, image.digest)
