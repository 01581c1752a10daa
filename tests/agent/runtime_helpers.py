"""Helpers for the runc runtime tests: a busybox layer unpacked into a directory, configs."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import uuid
from pathlib import Path

from kubelite.agent.images import builder
from kubelite.agent.images.unpack import Whiteouts, unpack_stream
from kubelite.agent.runtime.base import ContainerConfig, SandboxConfig


def unpack_busybox(dest: Path) -> Path:
    """The busybox-static image layer, unpacked as the image service would (one lower dir)."""
    blob, _diff_id = builder.busybox_layer()
    mode = Whiteouts.OVERLAY if os.geteuid() == 0 else Whiteouts.MARKERS
    unpack_stream(io.BytesIO(gzip.decompress(blob.data)), dest, mode=mode)
    return dest


def pod(name: str = "p", **kw: object) -> SandboxConfig:
    return SandboxConfig(pod_uid=str(uuid.uuid4()), namespace="default", name=name, hostname=name, **kw)  # type: ignore[arg-type]


def container(layer: Path, name: str, script: str, **kw: object) -> ContainerConfig:
    return ContainerConfig(
        name=name,
        image_ref="busybox",
        rootfs_layers=(str(layer),),
        args=("sh", "-c", script),
        env=(),
        **kw,  # type: ignore[arg-type]
    )


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(root))]


def runc_ids(root: Path) -> list[str]:
    out = subprocess.run(["runc", "--root", str(root / "runc"), "list", "-q"], capture_output=True, text=True)
    return out.stdout.split()


def unpack_layer(dest: Path, files: dict[str, bytes], whiteouts: tuple[str, ...] = ()) -> Path:
    """A small upper layer: ``files`` plus ``.wh.`` whiteouts of lower paths."""
    w = builder.LayerWriter()
    for d in sorted({str(Path(p).parent) for p in (*files, *whiteouts)} - {"."}):
        w.dir(d)
    for path, data in files.items():
        w.file(path, data)
    for path in whiteouts:
        w.file(str(Path(path).parent / f".wh.{Path(path).name}"), b"")
    blob, _diff_id = w.finish()
    mode = Whiteouts.OVERLAY if os.geteuid() == 0 else Whiteouts.MARKERS
    unpack_stream(io.BytesIO(gzip.decompress(blob.data)), dest, mode=mode)
    return dest
