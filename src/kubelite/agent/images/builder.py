"""Build small OCI images from local files, and push them to a registry.

This is how the offline demo and the tests get images without any outside registry:
a busybox-static binary with its applet links, an ``/etc/passwd`` and a writable ``/tmp``,
plus any extra files, as a reproducible OCI image (tar with mtime 0 and uid/gid 0,
gzip with mtime 0).  No library builds OCI images from a directory in Python (skopeo and
umoci cannot build from a rootfs either), so this small builder is written by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass
class Image:
    config: Blob
    layers: list[Blob]
    manifest: Blob
    diff_ids: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.manifest.digest


class LayerWriter:
    """A reproducible tar layer: files are added with mtime 0 and owner root."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed in finish()

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type = kind
        ti.mode = mode
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    def dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def finish(self) -> tuple[Blob, str]:
        self.tar.close()
        raw = self.buf.getvalue()
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        return Blob(OCI_LAYER_GZIP, gz), sha256(raw)


def busybox_path() -> Path:
    for p in BUSYBOX_CANDIDATES:
        if Path(p).exists():
            return Path(p)
    raise FileNotFoundError("busybox (busybox-static) is not installed")


def busybox_layer(busybox: Path | None = None) -> tuple[Blob, str]:
    bb = busybox or busybox_path()
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    w = LayerWriter()
    for d in ("bin", "etc", "root", "proc", "sys", "dev", "var", "var/run", "usr", "usr/bin", "home"):
        w.dir(d)
    w.dir("tmp", 0o1777)
    w.file("bin/busybox", bb.read_bytes(), 0o755)
    for a in applets:
        if a != "busybox":
            w.symlink(f"bin/{a}", "busybox")
    w.file("etc/passwd", PASSWD)
    w.file("etc/group", GROUP)
    return w.finish()


def files_layer(files: dict[str, bytes | tuple[bytes, int]]) -> tuple[Blob, str]:
    w = LayerWriter()
    dirs: set[str] = set()
    for path in sorted(files):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                w.dir(d)
        val = files[path]
        data, mode = (val, 0o644) if isinstance(val, bytes) else val
        w.file(path, data, mode)
    return w.finish()


def make_image(
    layers: list[tuple[Blob, str]],
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    workdir: str = "",
    labels: dict[str, str] | None = None,
    exposed_ports: list[str] | None = None,
    arch: str = "amd64",
) -> Image:
    diff_ids = [d for _, d in layers]
    cfg: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            **({"Entrypoint": entrypoint} if entrypoint else {}),
            **({"Cmd": cmd} if cmd else {}),
            **({"WorkingDir": workdir} if workdir else {}),
            **({"Labels": labels} if labels else {}),
            **({"ExposedPorts": {p: {} for p in exposed_ports}} if exposed_ports else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config = Blob(OCI_CONFIG, json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode())
    blobs = [b for b, _ in layers]
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    manifest = Blob(OCI_MANIFEST, json.dumps(manifest_doc, sort_keys=True, separators=(",", ":")).encode())
    return Image(config, blobs, manifest, diff_ids)


def busybox_image(
    extra_files: dict[str, bytes | tuple[bytes, int]] | None = None, cmd: list[str] | None = None, **kw: Any
) -> Image:
    layers = [busybox_layer()]
    if extra_files:
        layers.append(files_layer(extra_files))
    return make_image(layers, cmd=cmd or ["sh"], **kw)


def write_oci_layout(image: Image, out: Path, ref: str = "latest") -> None:
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/sha256/...``)."""
    if out.exists():
        shutil.rmtree(out)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for b in [image.config, *image.layers, image.manifest]:
        (blobs / b.digest.split(":", 1)[1]).write_bytes(b.data)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**image.manifest.descriptor(), "annotations": {"org.opencontainers.image.ref.name": ref}}
        ],
    }
    (out / "index.json").write_text(json.dumps(index))


def write_oci_archive(image: Image, out_tar: Path, ref: str = "latest") -> None:
    tmp = out_tar.with_suffix(".layout")
    write_oci_layout(image, tmp, ref)
    with tarfile.open(out_tar, "w") as tar:
        for p in sorted(tmp.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(tmp)), recursive=False)
    shutil.rmtree(tmp)


def _request(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(req, timeout=30)


def push(image: Image, registry: str, repo: str, tag: str) -> str:
    """Push to a registry over plain HTTP (``registry`` like ``127.0.0.1:5000``); returns the digest."""
    base = f"http://{registry}/v2/{repo}"
    for b in [*image.layers, image.config]:
        try:
            _request("HEAD", f"{base}/blobs/{b.digest}")
            continue
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        start = _request("POST", f"{base}/blobs/uploads/")
        loc = start.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{registry}{loc}"
        sep = "&" if "?" in loc else "?"
        _request("PUT", f"{loc}{sep}digest={b.digest}", b.data, {"Content-Type": "application/octet-stream"})
    _request(
        "PUT", f"{base}/manifests/{tag}", image.manifest.data, {"Content-Type": image.manifest.media_type}
    )
    return image.digest
