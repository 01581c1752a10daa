"""Unpack image layer tars into directories, safely.

Each layer is unpacked into its own directory once; the runtime stacks them read-only as
overlayfs lower dirs.  Whiteouts are therefore written the way overlayfs (and containerd's
overlay snapshotter) represent them: ``.wh.<name>`` becomes a 0/0 character device ``<name>``
and ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory.  Without root neither
is possible, so the markers are kept as empty files and :func:`flatten` interprets them; in
``APPLY`` mode a layer is applied on top of an existing rootfs (deleting what it whites out),
which is what ``docker load`` into a flat rootfs does.

Nothing is ever written outside the layer directory: members with ``..`` escaping the root
are rejected, symlinks met on the way to a member are resolved *inside* the root (an absolute
target restarts at the root, like Docker's ``FollowSymlinkInScope``), the last component of a
member is never followed, hardlinks must point inside the root, device nodes are skipped
when not root, and ``trusted.overlay.*`` xattrs from the tar are ignored.  The uncompressed
stream's sha256 (the diff_id) is computed while reading and checked by the caller.
"""

from __future__ import annotations

import contextlib
import enum
import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from kubelite.agent.runtime.base import ImagePullError

WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_SYMLINK_HOPS = 40
CHUNK = 1 << 20


class UnpackError(ImagePullError):
    """A layer could not be unpacked (unsafe member, bad archive, diff_id mismatch)."""


class Whiteouts(enum.Enum):
    OVERLAY = "overlay"  # char 0/0 devices and the opaque xattr (needs root)
    MARKERS = "markers"  # keep .wh. files as empty files (flatten() applies them)
    APPLY = "apply"  # delete the whited-out paths (layer applied onto a flat rootfs)


@dataclass
class LayerResult:
    diff_id: str
    size: int  # uncompressed tar bytes


class _HashingReader:
    """A read-only stream that hashes what passes through it (the layer's diff_id)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def open_layer(path: Path) -> BinaryIO:
    """The uncompressed tar stream of a layer blob (gzip or plain tar, detected by magic)."""
    f = path.open("rb")
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        f.close()
        raise UnpackError(f"layer {path.name}: zstd-compressed layers are not supported (use gzip)")
    return f


def _clean_member(name: str) -> str:
    """The member's path relative to the root; rejects paths that climb out of it."""
    norm = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    raw_parts = [p for p in name.split("/") if p not in ("", ".")]
    depth = 0
    for p in raw_parts:
        depth = depth - 1 if p == ".." else depth + 1
        if depth < 0:
            raise UnpackError(f"layer member {name!r} escapes the layer root ('..' above the root)")
    return norm


def _is_whiteout_dev(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


@dataclass
class _Layer:
    root: Path
    lowers: Sequence[Path]  # lower layer dirs, topmost first (overlay/marker modes)
    mode: Whiteouts
    privileged: bool
    created: set[str] = field(default_factory=set)
    dirs: list[tuple[Path, tarfile.TarInfo]] = field(default_factory=list)
    owner: tuple[int, int] | None = None  # (uid, gid) new entries get without lchown, if known

    def _lookup_link(self, parts: list[str]) -> tuple[str | None, bool]:
        """(the symlink target if ``parts`` is a symlink in the union view else None, whether it
        is a directory of this layer's own tree)."""
        for i, base in enumerate([self.root, *self.lowers]):
            p = base.joinpath(*parts)
            try:
                st = p.lstat()
            except (FileNotFoundError, NotADirectoryError):
                if i > 0 and (p.parent / (WH_PREFIX + p.name)).exists():
                    return None, False
                continue
            if stat.S_ISLNK(st.st_mode):
                return os.readlink(p), False
            return None, i == 0 and stat.S_ISDIR(st.st_mode)
        return None, False

    def resolve(self, rel: str) -> tuple[Path, bool]:
        """``rel`` inside the root, with every symlink resolved within the root (never outside),
        and whether that path is known to be a directory in the layer already (the lookups saw
        it), so the caller need not mkdir it."""
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        is_dir = True  # the root itself
        while todo:
            name = todo.pop(0)
            if name == "..":
                if done:
                    done.pop()
                is_dir = False  # not looked up: let mkdir make sure
                continue
            target, is_dir = self._lookup_link([*done, name])
            if target is None:
                done.append(name)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnpackError(f"layer member path {rel!r}: too many levels of symbolic links")
            if target.startswith("/"):
                done = []
                is_dir = True
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
        return self.root.joinpath(*done), is_dir

    def parent_dir(self, rel: str) -> Path:
        parent, is_dir = self.resolve(posixpath.dirname(rel))
        if is_dir:
            return parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise UnpackError(f"layer member {rel!r}: a parent is not a directory") from e
        return parent


def _remove(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _whiteout(layer: _Layer, rel: str, parent: Path, base: str) -> None:
    if base == WH_OPAQUE:
        _opaque(layer, rel, parent)
        return
    victim = parent / base[len(WH_PREFIX) :]
    if layer.mode is Whiteouts.APPLY:
        _remove(victim)
    elif layer.mode is Whiteouts.OVERLAY:
        _remove(victim)
        os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0))
    else:
        (parent / base).touch()


def _opaque(layer: _Layer, rel: str, parent: Path) -> None:
    if layer.mode is Whiteouts.APPLY:
        prefix = posixpath.dirname(rel)
        for child in list(parent.iterdir()):
            if posixpath.join(prefix, child.name) not in layer.created:
                _remove(child)
    elif layer.mode is Whiteouts.OVERLAY:
        os.setxattr(parent, OPAQUE_XATTR, b"y")
    else:
        (parent / WH_OPAQUE).touch()


def _write_file(layer: _Layer, path: Path, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    src = tar.extractfile(member)
    if src is None:
        raise UnpackError(f"layer member {member.name!r}: no data")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


def _hardlink(layer: _Layer, path: Path, member: tarfile.TarInfo) -> None:
    rel = _clean_member(member.linkname)
    target = layer.resolve(posixpath.dirname(rel))[0] / posixpath.basename(rel)
    try:
        st = target.lstat()
    except FileNotFoundError:
        raise UnpackError(
            f"layer member {member.name!r}: hardlink target {member.linkname!r} is not in this layer"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise UnpackError(f"layer member {member.name!r}: hardlink to a directory")
    os.link(target, path, follow_symlinks=False)


def _set_meta(layer: _Layer, path: Path, member: tarfile.TarInfo) -> None:
    if layer.privileged:
        if layer.owner != (member.uid, member.gid) or member.isdir():
            os.lchown(path, member.uid, member.gid)  # (new files already have ``owner``)
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted.overlay."):
                with contextlib.suppress(OSError):
                    raw = value.encode("utf-8", "surrogateescape")
                    os.setxattr(path, key[13:], raw, follow_symlinks=False)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def _apply_member(layer: _Layer, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    rel = _clean_member(member.name)
    if rel in ("", "."):
        return
    parent = layer.parent_dir(rel)
    base = posixpath.basename(rel)
    if base.startswith(WH_PREFIX):
        _whiteout(layer, rel, parent, base)
        return
    path = parent / base
    layer.created.add(rel)
    if member.isdir():
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            _remove(path)
        path.mkdir(mode=0o700, exist_ok=True)
        layer.dirs.append((path, member))
        return
    _remove(path)
    if member.isreg():
        _write_file(layer, path, member, tar)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        _hardlink(layer, path, member)
        return
    elif member.isfifo():
        os.mkfifo(path)
    elif member.ischr() or member.isblk():
        if not layer.privileged:
            return  # device nodes need root; the runtime provides /dev anyway
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    else:
        return
    _set_meta(layer, path, member)


def _new_entry_owner(dest: Path, mode: Whiteouts) -> tuple[int, int] | None:
    """The (uid, gid) every file, link and directory created under a fresh layer directory
    ``dest`` gets: ours, unless ``dest`` is setgid (its group would pass on).  Directory modes
    from the tar are applied only after all members, so no setgid bit appears on the way, and
    lchown is skipped for members that already have this owner (~1 syscall each).  None (always
    lchown) when applying onto an existing rootfs, whose directories may be setgid."""
    if mode is Whiteouts.APPLY or os.stat(dest).st_mode & stat.S_ISGID:
        return None
    return os.geteuid(), os.getegid()


def unpack_stream(
    stream: IO[bytes],
    dest: Path,
    *,
    mode: Whiteouts,
    lowers: Sequence[Path] = (),
    privileged: bool | None = None,
) -> LayerResult:
    """Apply one uncompressed layer tar from ``stream`` into ``dest``; returns its diff_id."""
    privileged = os.geteuid() == 0 if privileged is None else privileged
    dest.mkdir(parents=True, exist_ok=True)
    layer = _Layer(dest, list(lowers), mode, privileged, owner=_new_entry_owner(dest, mode))
    reader = _HashingReader(stream)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                _apply_member(layer, member, tar)
        reader.drain()
        for path, member in reversed(layer.dirs):
            _set_meta(layer, path, member)
    except UnpackError:
        raise
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as e:
        raise UnpackError(f"layer is not a valid tar archive: {e}") from e
    except OSError as e:
        raise UnpackError(f"cannot unpack layer: {e}") from e
    return LayerResult(reader.digest, reader.size)


def unpack_layer(
    blob: Path,
    dest: Path,
    *,
    mode: Whiteouts,
    lowers: Sequence[Path] = (),
    expected_diff_id: str = "",
    privileged: bool | None = None,
) -> LayerResult:
    """Unpack the (gzip or plain) layer blob into ``dest`` and check its diff_id."""
    with open_layer(blob) as stream:
        result = unpack_stream(stream, dest, mode=mode, lowers=lowers, privileged=privileged)
    if expected_diff_id and result.diff_id != expected_diff_id:
        raise UnpackError(
            f"layer {blob.name[:19]}: uncompressed content has digest {result.diff_id}, but the image "
            f"config says {expected_diff_id} (corrupt or tampered layer)"
        )
    return result


def default_mode() -> Whiteouts:
    """Overlay-style whiteouts as root, marker files otherwise."""
    return Whiteouts.OVERLAY if os.geteuid() == 0 else Whiteouts.MARKERS


def _flatten_entry(src: Path, dst: Path, inodes: dict[tuple[int, int], Path]) -> None:
    st = src.lstat()
    name = src.name
    if name == WH_OPAQUE or _is_whiteout_dev(st) or name.startswith(WH_PREFIX):
        if name.startswith(WH_PREFIX) and name != WH_OPAQUE:
            _remove(dst.parent / name[len(WH_PREFIX) :])
        else:
            _remove(dst)
        return
    if stat.S_ISDIR(st.st_mode):
        if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
            _remove(dst)
        opaque = (src / WH_OPAQUE).exists()
        with contextlib.suppress(OSError):
            opaque = opaque or os.getxattr(src, OPAQUE_XATTR) == b"y"
        if opaque and dst.is_dir():
            shutil.rmtree(dst)
        dst.mkdir(exist_ok=True)
        for child in sorted(src.iterdir(), key=lambda p: p.name != WH_OPAQUE):
            _flatten_entry(child, dst / child.name, inodes)
        shutil.copystat(src, dst)
        return
    _remove(dst)
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in inodes:
        os.link(inodes[key], dst)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst)
    else:
        return
    inodes[key] = dst


def flatten(layers: Sequence[Path], dest: Path) -> None:
    """Merge unpacked layer dirs (lowest first) into one plain rootfs (for runtimes without overlay)."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        inodes: dict[tuple[int, int], Path] = {}
        for child in sorted(layer.iterdir()):
            _flatten_entry(child, dest / child.name, inodes)
