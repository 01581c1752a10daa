"""Pod volumes on the node, laid out like the kubelet's ``/var/lib/kubelet/pods/<uid>/volumes``.

Each volume is a host directory (or file) under ``<root>/<pod uid>/volumes/<plugin>/<name>``
that containers bind-mount:

* ``emptyDir``: a directory (mode 0777); ``medium: Memory`` mounts a tmpfs there, sized by
  ``sizeLimit``;
* ``hostPath``: the host path itself, after the ``type`` check (``DirectoryOrCreate`` and
  ``FileOrCreate`` create it);
* ``configMap``, ``secret``, ``downwardAPI``, ``projected``: files written with the kubelet's
  atomic writer layout (a timestamped ``..<ts>`` directory, a ``..data`` symlink to it and one
  symlink per top-level name), so an update swaps every file at once; ``items``, ``defaultMode``,
  per-item ``mode`` and ``optional`` are honoured.  A projected ``serviceAccountToken`` is a
  placeholder (unsigned) token: the API server issues no tokens yet;
* ``persistentVolumeClaim``: the bound PersistentVolume's ``hostPath``/``local`` path.

``fsGroup`` chowns writable volume directories to the group (setgid dirs).  ``subPath`` (and
``subPathExpr``) are resolved inside the volume and must never escape it: ``..``, absolute paths
and symlinks that lead outside are refused (:class:`VolumeError`), the container is not started.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kubelite.agent.env import ConfigError, PodFacts, expand, field_ref, resource_field_ref
from kubelite.agent.runtime.base import Mount
from kubelite.api.quantity import parse_quantity

Obj = dict[str, Any]
_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


class VolumeError(Exception):
    """A volume cannot be set up or mounted; ``reason`` is the event/waiting reason."""

    def __init__(self, message: str, reason: str = "FailedMount") -> None:
        super().__init__(message)
        self.reason = reason


class VolumeSources(Protocol):
    async def configmap(self, namespace: str, name: str) -> Obj | None: ...

    async def secret(self, namespace: str, name: str) -> Obj | None: ...

    async def pvc(self, namespace: str, name: str) -> Obj | None: ...

    async def pv(self, name: str) -> Obj | None: ...


@dataclass(frozen=True)
class Volume:
    name: str
    host_path: str
    read_only: bool = False  # secret/configMap/downwardAPI/projected are always read-only


def pod_dir(root: Path, uid: str) -> Path:
    return root / uid


# ------------------------------------------------------------------------------- atomic writer
def write_atomic(target: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """Write ``{relative path: (content, mode)}`` into ``target`` with the ``..data`` layout."""
    target.mkdir(parents=True, exist_ok=True)
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S', time.gmtime())}.{time.monotonic_ns()}"
    new = target / stamp
    new.mkdir()
    for rel, (content, mode) in files.items():
        dest = new / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        os.chmod(dest, mode)
    link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(stamp, link)
    old = os.readlink(target / "..data") if (target / "..data").is_symlink() else ""
    os.replace(link, target / "..data")
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        entry = target / top
        if not entry.is_symlink():
            os.symlink(f"..data/{top}", entry)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)


def current_files(target: Path) -> dict[str, bytes]:
    data = target / "..data"
    out: dict[str, bytes] = {}
    if not data.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(data, followlinks=False):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(data))] = p.read_bytes()
    return out


def _safe_rel(path: str, what: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts:
        raise VolumeError(f"{what}: path {path!r} must be relative and may not contain '..'")
    return path


# ------------------------------------------------------------------------------- projections
def _decode(kind: str, value: Any) -> bytes:
    if kind == "secret":
        try:
            return base64.b64decode(str(value))
        except ValueError:
            return str(value).encode()
    return str(value).encode()


def _key_files(
    kind: str, obj: Obj | None, src: Obj, name: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    if obj is None:
        if src.get("optional"):
            return {}
        raise VolumeError(
            f'{kind.lower()} "{name}" not found' if kind != "secret" else f'secret "{name}" not found'
        )
    data: dict[str, bytes] = {}
    for k, v in (obj.get("data") or {}).items():
        data[k] = _decode("secret" if kind == "secret" else "configmap", v)
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = _decode("secret", v)
    items = src.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if src.get("optional"):
                continue
            raise VolumeError(f"{kind.lower()} references non-existent config key: {key}")
        out[_safe_rel(str(item.get("path")), f"{kind} {name}")] = (
            data[key],
            int(item.get("mode") or default_mode),
        )
    return out


def _downward_files(
    pod: Obj, items: list[Obj], default_mode: int, facts: PodFacts
) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        path = _safe_rel(str(item.get("path")), "downwardAPI")
        try:
            if item.get("fieldRef"):
                value = field_ref(pod, str(item["fieldRef"].get("fieldPath", "")), facts)
            else:
                ref = item.get("resourceFieldRef") or {}
                value = resource_field_ref(pod, str(ref.get("containerName") or ""), ref, facts)
        except ConfigError as e:
            raise VolumeError(str(e)) from e
        out[path] = (value.encode(), int(item.get("mode") or default_mode))
    return out


def placeholder_token(pod: Obj, audience: str, expiration: int) -> str:
    """An unsigned JWT-shaped token (``alg: none``): the API server does not issue tokens yet."""

    def b64(obj: Obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    meta = pod.get("metadata") or {}
    now = int(time.time())
    ns, sa = meta.get("namespace", "default"), (pod.get("spec") or {}).get("serviceAccountName") or "default"
    claims = {
        "aud": [audience] if audience else ["https://kubernetes.default.svc"],
        "iat": now,
        "exp": now + expiration,
        "iss": "https://kubernetes.default.svc",
        "sub": f"system:serviceaccount:{ns}:{sa}",
        "kubernetes.io": {"namespace": ns, "pod": {"name": meta.get("name"), "uid": meta.get("uid")}},
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.unsigned"


# ------------------------------------------------------------------------------- the manager
class PodVolumes:
    """Sets up, refreshes and tears down the volumes of pods under ``root`` (``<data>/pods``)."""

    def __init__(self, root: Path, sources: VolumeSources) -> None:
        self.root = root
        self.sources = sources

    def volumes_dir(self, uid: str) -> Path:
        return self.root / uid / "volumes"

    async def setup(self, pod: Obj, facts: PodFacts) -> dict[str, Volume]:
        """Make every volume of ``pod`` ready (idempotent; refreshes configMap/secret content)."""
        uid = str(pod["metadata"]["uid"])
        out: dict[str, Volume] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = str(vol.get("name"))
            try:
                out[name] = await self._one(pod, uid, vol, facts)
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}', e.reason) from e
        self._apply_fs_group(pod, out)
        return out

    async def _one(self, pod: Obj, uid: str, vol: Obj, facts: PodFacts) -> Volume:
        name = str(vol["name"])
        ns = str(pod["metadata"].get("namespace") or "default")
        if "emptyDir" in vol:
            return self._empty_dir(uid, name, vol.get("emptyDir") or {})
        if "hostPath" in vol:
            return Volume(name, host_path_check(vol["hostPath"]))
        if "configMap" in vol or "secret" in vol:
            kind = "configMap" if "configMap" in vol else "secret"
            src = vol[kind] or {}
            ref = str(src.get("name") if kind == "configMap" else src.get("secretName"))
            obj = await (
                self.sources.configmap(ns, ref) if kind == "configMap" else self.sources.secret(ns, ref)
            )
            files = _key_files(
                "configmap" if kind == "configMap" else "secret",
                obj,
                src,
                ref,
                int(src.get("defaultMode") or 0o644),
            )
            return self._written(uid, name, f"kubernetes.io~{kind.lower()}", files)
        if "downwardAPI" in vol:
            src = vol["downwardAPI"] or {}
            files = _downward_files(pod, src.get("items") or [], int(src.get("defaultMode") or 0o644), facts)
            return self._written(uid, name, "kubernetes.io~downward-api", files)
        if "projected" in vol:
            files = await self._projected(pod, vol["projected"] or {}, facts)
            return self._written(uid, name, "kubernetes.io~projected", files)
        if "persistentVolumeClaim" in vol:
            return await self._claim(ns, name, vol["persistentVolumeClaim"] or {})
        raise VolumeError(f"volume type of {name!r} is not supported by this node", "FailedMount")

    def _empty_dir(self, uid: str, name: str, src: Obj) -> Volume:
        path = self.volumes_dir(uid) / "kubernetes.io~empty-dir" / name
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)
        if src.get("medium") == "Memory" and not _is_mount(path):
            opts = "mode=0777"
            if src.get("sizeLimit"):
                opts += f",size={int(parse_quantity(src['sizeLimit']))}"
            if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", 0, opts.encode()) != 0:
                raise VolumeError(f"cannot mount tmpfs: {os.strerror(ctypes.get_errno())}")
        return Volume(name, str(path))

    def _written(self, uid: str, name: str, plugin: str, files: dict[str, tuple[bytes, int]]) -> Volume:
        path = self.volumes_dir(uid) / plugin / name
        if not (path / "..data").exists() or current_files(path) != {k: v for k, (v, _m) in files.items()}:
            write_atomic(path, files)
        return Volume(name, str(path), read_only=True)

    async def _projected(self, pod: Obj, src: Obj, facts: PodFacts) -> dict[str, tuple[bytes, int]]:
        ns = str(pod["metadata"].get("namespace") or "default")
        mode = int(src.get("defaultMode") or 0o644)
        out: dict[str, tuple[bytes, int]] = {}
        for s in src.get("sources") or []:
            if s.get("configMap"):
                ref = str(s["configMap"].get("name"))
                out.update(
                    _key_files("configmap", await self.sources.configmap(ns, ref), s["configMap"], ref, mode)
                )
            elif s.get("secret"):
                ref = str(s["secret"].get("name"))
                out.update(_key_files("secret", await self.sources.secret(ns, ref), s["secret"], ref, mode))
            elif s.get("downwardAPI"):
                out.update(_downward_files(pod, s["downwardAPI"].get("items") or [], mode, facts))
            elif s.get("serviceAccountToken"):
                tok = s["serviceAccountToken"]
                path = _safe_rel(str(tok.get("path") or "token"), "serviceAccountToken")
                token = placeholder_token(
                    pod, str(tok.get("audience") or ""), int(tok.get("expirationSeconds") or 3600)
                )
                out[path] = (token.encode(), mode)
        return out

    async def _claim(self, ns: str, name: str, src: Obj) -> Volume:
        claim = str(src.get("claimName"))
        pvc = await self.sources.pvc(ns, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = str((pvc.get("spec") or {}).get("volumeName") or "")
        if not pv_name or (pvc.get("status") or {}).get("phase") not in (None, "Bound"):
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = await self.sources.pv(pv_name)
        if pv is None:
            raise VolumeError(f'persistentvolume "{pv_name}" not found')
        spec = pv.get("spec") or {}
        path = str((spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path") or "")
        if not path:
            raise VolumeError(
                f'persistentvolume "{pv_name}" has no hostPath or local path this node can mount'
            )
        if spec.get("hostPath") is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
        elif not Path(path).is_dir():
            raise VolumeError(f"local volume path {path} does not exist")
        return Volume(name, path, read_only=bool(src.get("readOnly")))

    def _apply_fs_group(self, pod: Obj, vols: dict[str, Volume]) -> None:
        group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        if group is None:
            return
        uid = str(pod["metadata"]["uid"])
        mine = self.volumes_dir(uid)
        for v in vols.values():
            p = Path(v.host_path)
            if p.is_relative_to(mine) and not v.read_only:
                _chown_group(p, int(group))

    async def teardown(self, uid: str) -> None:
        """Unmount tmpfs volumes and remove the pod's directory (hostPath/PV data is never touched)."""
        base = self.root / uid
        empty = self.volumes_dir(uid) / "kubernetes.io~empty-dir"
        if empty.is_dir():
            for d in empty.iterdir():
                while _is_mount(d):
                    if _libc.umount2(os.fsencode(d), MNT_DETACH) != 0:
                        break
        if any(_is_mount(p) for p in _mounts_under(base)):
            return  # never rmtree through a mount
        shutil.rmtree(base, ignore_errors=True)


def _chown_group(path: Path, gid: int) -> None:
    for dirpath, dirs, files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chown(dirpath, -1, gid)
            os.chmod(dirpath, os.stat(dirpath).st_mode | stat.S_ISGID | stat.S_IRWXG)
        for f in files + dirs:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(dirpath, f), -1, gid, follow_symlinks=False)


def _mounts_under(base: Path) -> list[Path]:
    out: list[Path] = []
    prefix = str(base.resolve()) + "/" if base.exists() else ""
    if not prefix:
        return out
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split(" ", 5)[4]
            if mnt.startswith(prefix):
                out.append(Path(mnt))
    return out


def _is_mount(path: Path) -> bool:
    return os.path.ismount(path)


# ------------------------------------------------------------------------------- hostPath
def host_path_check(src: Obj) -> str:
    """The hostPath ``type`` check (and creation for the ``*OrCreate`` types)."""
    path = str(src.get("path") or "")
    kind = str(src.get("type") or "")
    p = Path(path)
    if kind == "DirectoryOrCreate" and not p.exists():
        p.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644)
    checks = {
        "Directory": (p.is_dir, "a directory"),
        "DirectoryOrCreate": (p.is_dir, "a directory"),
        "File": (p.is_file, "a file"),
        "FileOrCreate": (p.is_file, "a file"),
        "Socket": (p.is_socket, "a socket"),
        "CharDevice": (p.is_char_device, "a character device"),
        "BlockDevice": (p.is_block_device, "a block device"),
    }
    if kind in checks:
        ok, what = checks[kind]
        if not p.exists():
            raise VolumeError(f"hostPath type check failed: {path} does not exist")
        if not ok():
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")
    return path


# ------------------------------------------------------------------------------- mounts
def resolve_sub_path(volume_path: str, sub_path: str, mount_name: str, container: str) -> str:
    """The host path of ``sub_path`` inside a volume; refuses anything that escapes the volume."""
    prefix = f'failed to prepare subPath for volumeMount "{mount_name}" of container "{container}"'
    parts = sub_path.split("/")
    if sub_path.startswith("/") or ".." in parts:
        raise VolumeError(
            f"{prefix}: subPath {sub_path!r} must be a relative path without '..'",
            "CreateContainerConfigError",
        )
    base = os.path.realpath(volume_path)
    candidate = os.path.join(base, sub_path)
    real = os.path.realpath(candidate)
    if real != base and not real.startswith(base.rstrip("/") + "/"):
        raise VolumeError(
            f"{prefix}: subPath {sub_path!r} resolves to {real}, outside the volume",
            "CreateContainerConfigError",
        )
    if not os.path.lexists(candidate):
        os.makedirs(candidate, mode=0o755, exist_ok=True)
        if os.path.realpath(candidate) != real:  # a race replaced a component with a symlink
            raise VolumeError(f"{prefix}: subPath changed while being created", "CreateContainerConfigError")
    return real


def container_mounts(container: Obj, volumes: Mapping[str, Volume], env: Mapping[str, str]) -> list[Mount]:
    """``volumeMounts`` of a container as runtime mounts (subPath/subPathExpr resolved safely)."""
    name = str(container.get("name"))
    out: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(str(vm.get("name")))
        if vol is None:
            raise VolumeError(
                f'volumeMount "{vm.get("name")}" of container "{name}" names no volume',
                "CreateContainerConfigError",
            )
        host = vol.host_path
        sub = str(vm.get("subPath") or "")
        if vm.get("subPathExpr"):
            sub = expand(str(vm["subPathExpr"]), env)
        if sub:
            host = resolve_sub_path(vol.host_path, sub, str(vm.get("name")), name)
        prop = {"HostToContainer": "rslave", "Bidirectional": "rshared"}.get(
            str(vm.get("mountPropagation") or ""), ""
        )
        out.append(Mount(host, str(vm.get("mountPath")), bool(vm.get("readOnly")) or vol.read_only, prop))
    return out
