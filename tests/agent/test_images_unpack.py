"""Layer unpacking: whiteouts, links, and no write ever lands outside the layer directory."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubelite.agent.images.unpack import (
    OPAQUE_XATTR,
    UnpackError,
    Whiteouts,
    flatten,
    unpack_layer,
    unpack_stream,
)

Entry = tuple[str, str, object]  # (name, kind, data|linkname)


def make_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "file":
                payload = data if isinstance(data, bytes) else b""
                ti.size, ti.mode = len(payload), 0o644
                t.addfile(ti, io.BytesIO(payload))
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data)
                t.addfile(ti)
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
                t.addfile(ti)
    return buf.getvalue()


def apply(raw: bytes, root: Path, mode: Whiteouts = Whiteouts.APPLY, **kw: object) -> str:
    return unpack_stream(io.BytesIO(raw), root, mode=mode, **kw).diff_id  # type: ignore[arg-type]


def snapshot(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(layer root, a sibling 'outside' dir with a sentinel) inside tmp_path."""
    root = tmp_path / "layer"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("keep")
    return root, outside


def assert_untouched(tmp_path: Path, outside: Path) -> None:
    assert snapshot(outside) == {"sentinel"}
    assert (outside / "sentinel").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer", "outside"]


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../outside/pwned", "../outside/sentinel"])
def test_dotdot_members_are_rejected(tmp_path: Path, sandbox: tuple[Path, Path], name: str) -> None:
    root, outside = sandbox
    with pytest.raises(UnpackError, match="escapes the layer root"):
        apply(make_tar([("ok", "file", b"x"), (name, "file", b"pwned")]), root)
    assert_untouched(tmp_path, outside)


def test_absolute_symlink_parent_resolves_inside_root(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    entries: list[Entry] = [
        ("escape", "sym", str(outside)),
        ("escape/pwned", "file", b"pwned"),
        ("up", "sym", "../../../../.."),
        ("up/etc/pwned2", "file", b"pwned"),
        ("abs", "sym", "/"),
        ("abs/outside/sentinel", "file", b"overwritten?"),
    ]
    apply(make_tar(entries), root, Whiteouts.OVERLAY)
    assert_untouched(tmp_path, outside)
    # re-rooted like Docker: the writes land inside the layer
    assert (root / str(outside).lstrip("/") / "pwned").read_bytes() == b"pwned"
    assert (root / "etc" / "pwned2").exists()
    assert (root / "outside" / "sentinel").read_bytes() == b"overwritten?"
    assert os.readlink(root / "escape") == str(outside)  # the symlink itself is kept as written


def test_last_component_symlink_is_replaced_not_followed(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    apply(make_tar([("target", "sym", str(outside / "sentinel")), ("target", "file", b"new")]), root)
    assert_untouched(tmp_path, outside)
    assert not (root / "target").is_symlink() and (root / "target").read_bytes() == b"new"


@pytest.mark.parametrize("link", ["../outside/sentinel", "/etc/passwd", "missing"])
def test_hardlinks_must_stay_inside(tmp_path: Path, sandbox: tuple[Path, Path], link: str) -> None:
    root, outside = sandbox
    with pytest.raises(UnpackError):
        apply(make_tar([("h", "link", link)]), root)
    assert_untouched(tmp_path, outside)
    assert os.stat(outside / "sentinel").st_nlink == 1


def test_hardlink_inside_layer(tmp_path: Path) -> None:
    root = tmp_path / "l"
    apply(make_tar([("a", "file", b"data"), ("b", "link", "a")]), root)
    assert os.stat(root / "a").st_ino == os.stat(root / "b").st_ino


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match="too many levels"):
        apply(make_tar([("a", "sym", "b"), ("b", "sym", "a"), ("a/x", "file", b"")]), tmp_path / "l")


def test_devices_skipped_without_root(tmp_path: Path) -> None:
    apply(make_tar([("dev/null", "chr", None), ("f", "file", b"x")]), tmp_path / "l", privileged=False)
    assert not (tmp_path / "l" / "dev" / "null").exists()
    assert (tmp_path / "l" / "f").exists()


def _two_layers() -> tuple[bytes, bytes]:
    lower = make_tar(
        [
            ("www/", "dir", None),
            ("www/index.html", "file", b"v1"),
            ("www/old.txt", "file", b"old"),
            ("opq/", "dir", None),
            ("opq/a.txt", "file", b"a"),
            ("bin/", "dir", None),
            ("bin/sh", "file", b"#!"),
        ]
    )
    upper = make_tar(
        [
            ("www/index.html", "file", b"v2"),
            ("www/.wh.old.txt", "file", b""),
            ("opq/", "dir", None),
            ("opq/.wh..wh..opq", "file", b""),
            ("opq/b.txt", "file", b"b"),
        ]
    )
    return lower, upper


def _expected_tree(root: Path) -> None:
    assert (root / "www" / "index.html").read_bytes() == b"v2"
    assert not (root / "www" / "old.txt").exists()
    assert sorted(p.name for p in (root / "opq").iterdir()) == ["b.txt"]
    assert (root / "bin" / "sh").exists()


def test_whiteouts_applied_onto_a_rootfs(tmp_path: Path) -> None:
    lower, upper = _two_layers()
    root = tmp_path / "rootfs"
    apply(lower, root)
    apply(upper, root)
    _expected_tree(root)


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts (0/0 devices, trusted xattrs) need root")
def test_overlay_whiteouts_mount_and_flatten(tmp_path: Path) -> None:
    lower, upper = _two_layers()
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    apply(lower, l1, Whiteouts.OVERLAY)
    apply(upper, l2, Whiteouts.OVERLAY, lowers=[l1])
    wh = (l2 / "www" / "old.txt").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(l2 / "opq", OPAQUE_XATTR) == b"y"
    merged, work, up = tmp_path / "merged", tmp_path / "work", tmp_path / "upper"
    for d in (merged, work, up):
        d.mkdir()
    opts = f"lowerdir={l2}:{l1},upperdir={up},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        _expected_tree(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    flat = tmp_path / "flat"
    flatten([l1, l2], flat)
    _expected_tree(flat)


def test_marker_whiteouts_flatten(tmp_path: Path) -> None:
    lower, upper = _two_layers()
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    apply(lower, l1, Whiteouts.MARKERS)
    apply(upper, l2, Whiteouts.MARKERS, lowers=[l1])
    assert (l2 / "www" / ".wh.old.txt").exists()
    flat = tmp_path / "flat"
    flatten([l1, l2], flat)
    _expected_tree(flat)
    assert not list(flat.rglob(".wh.*"))


def test_symlink_in_lower_layer_is_followed_within_the_union(tmp_path: Path) -> None:
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    apply(make_tar([("usr/bin/", "dir", None), ("bin", "sym", "usr/bin")]), l1, Whiteouts.MARKERS)
    apply(make_tar([("bin/tool", "file", b"t")]), l2, Whiteouts.MARKERS, lowers=[l1])
    assert (l2 / "usr" / "bin" / "tool").read_bytes() == b"t"


def test_diff_id_verified(tmp_path: Path) -> None:
    raw = make_tar([("f", "file", b"x")])
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(raw))
    good = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert unpack_layer(blob, tmp_path / "a", mode=Whiteouts.APPLY, expected_diff_id=good).diff_id == good
    with pytest.raises(UnpackError, match="uncompressed content has digest"):
        unpack_layer(blob, tmp_path / "b", mode=Whiteouts.APPLY, expected_diff_id="sha256:" + "0" * 64)


def test_garbage_layer_is_an_error(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(UnpackError, match="not a valid tar"):
        unpack_layer(blob, tmp_path / "a", mode=Whiteouts.APPLY)


_segment = st.sampled_from(["a", "b", "..", ".", "outside", "sentinel", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.lists(_segment, min_size=1, max_size=5).map("/".join),
            st.sampled_from(["file", "dir", "sym"]),
            st.sampled_from(["/", "..", "../..", "../outside", "a", "/outside", "b/.."]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_property_nothing_written_outside(tmp_path: Path, entries: list[tuple[str, str, str]]) -> None:
    base = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    root, outside = base / "layer", base / "outside"
    outside.mkdir(parents=True)
    (outside / "sentinel").write_text("keep")
    tar_entries: list[Entry] = [(n, k, t.encode() if k == "file" else t) for n, k, t in entries]
    with contextlib.suppress(UnpackError):
        apply(make_tar(tar_entries), root)
    assert snapshot(outside) == {"sentinel"}
    assert (outside / "sentinel").read_text() == "keep"
    assert sorted(p.name for p in base.iterdir()) in (["outside"], ["layer", "outside"])


def _owned_tar(entries: list[tuple[str, str, int, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, uid, gid in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mtime = uid, gid, 7
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, "d"
            else:
                ti.mode = 0o640
            t.addfile(ti, io.BytesIO(b"") if kind == "file" else None)
    return buf.getvalue()


@pytest.mark.parametrize("setgid_dest", [False, True])
def test_owners_are_those_of_the_tar(tmp_path: Path, setgid_dest: bool) -> None:
    """lchown is skipped only where it cannot change anything (the owner a new entry gets)."""
    root = tmp_path / "layer"
    root.mkdir()
    if setgid_dest:  # new entries would inherit group 4242 from a setgid directory
        os.chown(root, 0, 4242)
        os.chmod(root, 0o2755)
    entries = [
        ("d", "dir", 0, 0), ("d/root-file", "file", 0, 0), ("d/user-file", "file", 1000, 1001),
        ("lnk", "sym", 0, 0), ("ulnk", "sym", 1000, 1001), ("lnk/via-link", "file", 0, 0),
        ("u", "dir", 1000, 1001), ("u/x/../y", "file", 0, 0),
    ]  # fmt: skip
    apply(_owned_tar(entries), root, Whiteouts.OVERLAY, privileged=True)
    names = ("d", "d/root-file", "d/user-file", "lnk", "ulnk", "d/via-link", "u", "u/y")
    owners = {p: (os.lstat(root / p).st_uid, os.lstat(root / p).st_gid) for p in names}
    assert owners["d"] == owners["d/root-file"] == owners["lnk"] == owners["d/via-link"] == (0, 0)
    assert owners["d/user-file"] == owners["ulnk"] == owners["u"] == (1000, 1001)
    assert owners["u/y"] == (0, 0)
    assert os.lstat(root / "d/via-link").st_mtime == 7 and (root / "d/via-link").is_file()
