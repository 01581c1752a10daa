"""The node's local image store: content-addressed blobs, image records, shared unpacked layers.

Layout under ``<data-dir>/images``::

    blobs/sha256/<hex>      manifests, configs and compressed layers, named by their digest
    layers/sha256/<hex>/    a layer unpacked once, named by its diff_id (overlay lower dir)
    index.json              image records: normalised reference -> digests and layers
    tmp/                    downloads and unpacks in progress (renamed into place when verified)

Like containerd's content store, a blob is only visible once its digest was verified, and a
layer only once fully unpacked, so a crash never leaves a half-written layer in use.  Layers
are shared between images by diff_id.  :meth:`ImageStore.gc` mirrors the kubelet's image
garbage collection: when the disk is above ``high_pct`` used, unused images are removed least
recently used first until it is below ``low_pct``.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubelite.agent.images import reference
from kubelite.agent.images.unpack import Whiteouts, default_mode, unpack_layer
from kubelite.agent.runtime.base import ImagePullError, PulledImage

DiskUsage = Callable[[], tuple[int, int]]  # (total bytes, used bytes)
STALE_TMP_SECONDS = 3600


class DigestMismatchError(ImagePullError):
    """Content does not match the digest (or size) it was addressed by."""


@dataclass
class ImageRecord:
    ref: str  # normalised reference it was pulled or imported as
    digest: str  # what the reference resolved to (an index digest for multi-platform images)
    manifest_digest: str  # the platform manifest actually used
    config_digest: str
    layers: list[tuple[str, str]]  # (blob digest, diff_id), lowest first
    size: int = 0  # bytes of the manifest, config and compressed layers
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageRecord:
        doc = dict(doc)
        doc["layers"] = [tuple(x) for x in doc.get("layers", [])]
        return cls(**doc)

    @property
    def image_id(self) -> str:
        """``repo@digest``: what a container status reports as ``imageID``."""
        return str(reference.parse(self.ref).with_digest(self.digest))


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise DigestMismatchError(f"unsupported or malformed digest {digest!r} (expected sha256:<64 hex>)")
    return value


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _rmtree(path: Path) -> None:
    def onerror(func: Any, p: str, exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=onerror)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_blocks * 512
    return total


def statvfs_usage(path: Path) -> DiskUsage:
    def usage() -> tuple[int, int]:
        st = os.statvfs(path)
        total = st.f_blocks * st.f_frsize
        return total, total - st.f_bavail * st.f_frsize

    return usage


class ImageStore:
    """Blobs, records and unpacked layers of one node (safe for threads and for several processes)."""

    def __init__(self, root: Path, *, whiteouts: Whiteouts | None = None) -> None:
        self.root = root
        self.whiteouts = whiteouts or default_mode()
        for d in ("blobs/sha256", "layers/sha256", "tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._leases: collections.Counter[str] = collections.Counter()
        self._clean_tmp()

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def temp_path(self, suffix: str = "") -> Path:
        return self.root / "tmp" / f"{uuid.uuid4().hex}{suffix}"

    def commit_blob(self, tmp: Path, digest: str, size: int | None = None) -> Path:
        """Verify ``tmp`` against ``digest`` (and size) and move it into the store."""
        actual, actual_size = file_digest(tmp)
        if actual != digest or (size is not None and size >= 0 and actual_size != size):
            tmp.unlink(missing_ok=True)
            raise DigestMismatchError(
                f"blob {digest}: content has digest {actual} and {actual_size} bytes"
                + (f" (expected {size} bytes)" if size is not None else "")
            )
        dest = self.blob_path(digest)
        os.replace(tmp, dest)
        return dest

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and digest != actual:
            raise DigestMismatchError(f"blob {digest}: content has digest {actual}")
        if not self.has_blob(actual):
            tmp = self.temp_path()
            tmp.write_bytes(data)
            os.replace(tmp, self.blob_path(actual))
        return actual

    # -- layers ------------------------------------------------------------------------------
    def layer_dir(self, diff_id: str) -> Path:
        return self.root / "layers" / "sha256" / _hex(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_dir(diff_id).is_dir()

    def unpack(self, blob_digest: str, diff_id: str, lower_diff_ids: list[str]) -> Path:
        """Unpack a stored layer blob once (no-op when the diff_id is already unpacked)."""
        dest = self.layer_dir(diff_id)
        if dest.is_dir():
            return dest
        tmp = self.temp_path(".layer")
        lowers = [self.layer_dir(d) for d in reversed(lower_diff_ids)]
        try:
            unpack_layer(
                self.blob_path(blob_digest), tmp, mode=self.whiteouts, lowers=lowers, expected_diff_id=diff_id
            )
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.is_dir():
                    raise
        finally:
            if tmp.exists():
                _rmtree(tmp)
        return dest

    # -- records -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _index(self, write: bool) -> Iterator[dict[str, Any]]:
        with self._lock, (self.root / "index.lock").open("a+") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            path = self.root / "index.json"
            doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            doc.setdefault("images", {})
            yield doc
            if write:
                tmp = self.temp_path(".json")
                tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
                os.replace(tmp, path)

    def put_image(self, record: ImageRecord) -> None:
        with self._index(True) as doc:
            old = doc["images"].get(record.ref)
            if old is not None and old["digest"] == record.digest:
                record.created = old.get("created", record.created)
            doc["images"][record.ref] = asdict(record)

    def get_image(self, ref: str) -> ImageRecord | None:
        """The record for a normalised reference; ``repo@digest`` matches any tag of that content."""
        parsed = reference.parse(ref)
        with self._index(False) as doc:
            images: dict[str, Any] = doc["images"]
            if ref in images:
                return ImageRecord.from_json(images[ref])
            if not parsed.digest:
                return None
            for rec in images.values():
                same_repo = reference.parse(rec["ref"]).name == parsed.name
                if same_repo and parsed.digest in (rec["digest"], rec["manifest_digest"]):
                    return ImageRecord.from_json(rec)
        return None

    def list_images(self) -> list[ImageRecord]:
        with self._index(False) as doc:
            return [ImageRecord.from_json(r) for r in doc["images"].values()]

    def touch(self, ref: str) -> None:
        with self._index(True) as doc:
            if ref in doc["images"]:
                doc["images"][ref]["last_used"] = time.time()

    def remove_image(self, ref: str, prune: bool = True) -> bool:
        with self._index(True) as doc:
            found = doc["images"].pop(ref, None) is not None
        if found and prune:
            self.prune()
        return found

    def complete(self, record: ImageRecord) -> bool:
        """Every layer of the image is unpacked and the config is present."""
        return self.has_blob(record.config_digest) and all(self.has_layer(d) for _, d in record.layers)

    def pulled_image(self, record: ImageRecord) -> PulledImage:
        cfg = json.loads(self.read_blob(record.config_digest)).get("config") or {}
        return PulledImage(
            ref=record.ref,
            digest=record.digest,
            layers=tuple(str(self.layer_dir(d)) for _, d in record.layers),
            entrypoint=tuple(cfg.get("Entrypoint") or ()),
            cmd=tuple(cfg.get("Cmd") or ()),
            env=tuple(cfg.get("Env") or ()),
            working_dir=cfg.get("WorkingDir") or "",
            user=cfg.get("User") or "",
            size=record.size,
        )

    # -- garbage collection ------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, digests: Iterator[str] | list[str]) -> Iterator[None]:
        """Protect blobs/layers of a pull in progress (no record yet) from :meth:`prune`."""
        held = [_hex(d) for d in digests if d]
        with self._lock:
            self._leases.update(held)
        try:
            yield
        finally:
            with self._lock:
                self._leases.subtract(held)
                self._leases += collections.Counter()  # drop zero counts

    def prune(self) -> int:
        """Delete blobs and layers no image refers to; returns the bytes freed."""
        with self._index(True) as doc:
            blobs: set[str] = set()
            layers: set[str] = set()
            for rec in doc["images"].values():
                blobs.update({rec["digest"], rec["manifest_digest"], rec["config_digest"]})
                for blob, diff_id in rec["layers"]:
                    blobs.add(_hex(blob))
                    layers.add(_hex(diff_id))
            keep_blobs = {_hex(b) if ":" in b else b for b in blobs} | set(self._leases)
            layers |= set(self._leases)
            freed = 0
            for p in (self.root / "blobs" / "sha256").iterdir():
                if p.name not in keep_blobs:
                    freed += p.stat().st_blocks * 512
                    p.unlink(missing_ok=True)
            for p in (self.root / "layers" / "sha256").iterdir():
                if p.name not in layers:
                    freed += tree_size(p)
                    _rmtree(p)
        return freed

    def gc(
        self, keep: set[str], high_pct: float = 85, low_pct: float = 80, usage: DiskUsage | None = None
    ) -> list[str]:
        """The kubelet's image GC: above ``high_pct`` disk use, remove images not in ``keep``
        (references, digests or image IDs), least recently used first, until below ``low_pct``."""
        usage = usage or statvfs_usage(self.root)
        total, used = usage()
        if total <= 0 or used * 100 < high_pct * total:
            return []
        to_free = used - total * low_pct / 100
        removed: list[str] = []
        for rec in sorted(self.list_images(), key=lambda r: (r.last_used, r.created)):
            if to_free <= 0:
                break
            if {rec.ref, rec.digest, rec.image_id} & keep:
                continue
            self.remove_image(rec.ref, prune=False)
            removed.append(rec.ref)
            to_free -= self.prune()
        return removed

    def _clean_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for p in (self.root / "tmp").iterdir():
            with contextlib.suppress(OSError):
                if p.lstat().st_mtime < cutoff:
                    _rmtree(p)
