"""The node's ImageService: pull policies, one pull per image at a time, pull secrets.

Mirrors the kubelet's image manager on top of a CRI image service:

* ``Never``: use the image if present, else ``ErrImageNeverPull`` with the kubelet's message;
* ``IfNotPresent``: use the image if present, never asking the registry;
* ``Always``: resolve the tag (one ``HEAD``); when it still names the stored digest nothing is
  downloaded, otherwise the new content is pulled (a moved tag is picked up).

The default policy by tag (``Always`` for ``:latest`` or no tag, else ``IfNotPresent``) is the
API server's defaulting, so it is left to the caller.  Concurrent pulls of one reference wait
for the first; layers already unpacked (by diff_id) are shared, not downloaded again.
``imagePullSecrets`` of type ``kubernetes.io/dockerconfigjson`` (and the legacy ``dockercfg``)
become ``{registry: RegistryAuth}`` with :func:`auth_from_pull_secrets`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from kubelite.agent.images import reference
from kubelite.agent.images.distribution import (
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Progress,
    RegistryClient,
    new_http_client,
    normalize_registry_key,
)
from kubelite.agent.images.reference import Reference
from kubelite.agent.images.store import ImageRecord, ImageStore
from kubelite.agent.runtime.base import (
    ImageNeverPullError,
    ImagePullError,
    PulledImage,
    RegistryAuth,
)

POLICIES = ("Always", "IfNotPresent", "Never")
MAX_CONCURRENT_DOWNLOADS = 3  # as dockerd's max-concurrent-downloads


def _secret_config(secret: Mapping[str, Any]) -> dict[str, Any]:
    data = secret.get("data") or {}
    kind = secret.get("type", "")
    key = ".dockerconfigjson" if kind == "kubernetes.io/dockerconfigjson" else ".dockercfg"
    if kind not in ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg") or key not in data:
        return {}
    try:
        doc = json.loads(base64.b64decode(data[key]))
    except (ValueError, binascii.Error):
        return {}
    if not isinstance(doc, dict):
        return {}
    auths = doc.get("auths", {}) if key == ".dockerconfigjson" else doc
    return auths if isinstance(auths, dict) else {}


def _entry_auth(entry: Mapping[str, Any]) -> RegistryAuth:
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth") and not user:
        with contextlib.suppress(ValueError, binascii.Error):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    token = str(entry.get("identitytoken") or entry.get("registrytoken") or "")
    return RegistryAuth(user, password, token)


def auth_from_pull_secrets(secrets: list[dict[str, Any]]) -> dict[str, RegistryAuth]:
    """``{registry host[/path]: RegistryAuth}`` from Secret objects; the first secret wins per key
    (the kubelet tries the secrets in order).  Secrets of other types are ignored."""
    out: dict[str, RegistryAuth] = {}
    for secret in secrets:
        for key, entry in _secret_config(secret).items():
            if isinstance(entry, dict):
                out.setdefault(normalize_registry_key(key), _entry_auth(entry))
    return out


class LocalImageService:
    """Implements :class:`kubelite.agent.runtime.base.ImageService` over :class:`ImageStore`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        insecure_registries: Iterable[str] = (),
        default_auth: Mapping[str, RegistryAuth] | None = None,
        store: ImageStore | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.store = store or ImageStore(data_dir / "images")
        self.insecure = list(insecure_registries)
        self.default_auth = dict(default_auth or {})
        self.timeout = timeout
        self._http: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._layer_locks: dict[str, asyncio.Lock] = {}

    # -- ImageService ------------------------------------------------------------------------
    async def pull(
        self,
        ref: str,
        auth: dict[str, RegistryAuth] | None = None,
        policy: str = "IfNotPresent",
        progress: Progress | None = None,
    ) -> PulledImage:
        if policy not in POLICIES:
            raise ImagePullError(f"unknown imagePullPolicy {policy!r} (Always, IfNotPresent or Never)")
        parsed = reference.parse(ref)
        key = str(parsed)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            record = await asyncio.to_thread(self._present, key)
            if record is not None and (policy != "Always" or parsed.digest):
                return await asyncio.to_thread(self._use, record)
            if policy == "Never":
                raise ImageNeverPullError(f'Container image "{ref}" is not present with pull policy of Never')
            auths = {**self.default_auth, **(auth or {})}
            async with RegistryClient(auths, self.insecure, http=self._http_client()) as client:
                return await self._pull(client, parsed, record, progress)

    async def get(self, ref: str) -> PulledImage | None:
        record = await asyncio.to_thread(self._present, str(reference.parse(ref)))
        return None if record is None else await asyncio.to_thread(self.store.pulled_image, record)

    async def list(self) -> builtins.list[PulledImage]:
        def all_images() -> builtins.list[PulledImage]:
            return [self.store.pulled_image(r) for r in self.store.list_images() if self.store.complete(r)]

        return await asyncio.to_thread(all_images)

    async def remove(self, ref: str) -> None:
        key = str(reference.parse(ref))
        if not await asyncio.to_thread(self.store.remove_image, key):
            raise ImagePullError(f"image {ref} is not present")

    async def gc(self, keep: set[str], high_pct: float = 85, low_pct: float = 80) -> builtins.list[str]:
        """Image garbage collection by disk threshold (see :meth:`ImageStore.gc`)."""
        return await asyncio.to_thread(self.store.gc, keep, high_pct, low_pct)

    async def aclose(self) -> None:
        if self._http is not None and self._http[0] is asyncio.get_running_loop():
            await self._http[1].aclose()
        self._http = None

    # -- internals ---------------------------------------------------------------------------
    def _http_client(self) -> httpx.AsyncClient:
        """One connection pool per event loop (pools cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop or self._http[1].is_closed:
            self._http = (loop, new_http_client(self.timeout))
        return self._http[1]

    def _present(self, key: str) -> ImageRecord | None:
        record = self.store.get_image(key)
        return record if record is not None and self.store.complete(record) else None

    def _use(self, record: ImageRecord) -> PulledImage:
        self.store.touch(record.ref)
        return self.store.pulled_image(record)

    async def _pull(
        self, client: RegistryClient, ref: Reference, old: ImageRecord | None, progress: Progress | None
    ) -> PulledImage:
        digest, _ = await client.resolve(ref)
        if old is not None and old.digest == digest:
            return await asyncio.to_thread(self._use, old)
        with self.store.lease([digest]):
            top = await self._manifest(client, ref, digest)
            manifest = top
            if top.is_index:
                entry = client.pick_platform(ref, top)
                manifest = await self._manifest(client, ref, str(entry.get("digest", "")))
                if manifest.is_index:
                    raise ImagePullError(f"{ref}: nested image index for one platform is not supported")
            with self.store.lease([manifest.digest]):
                record = await self._fetch_image(client, ref, top, manifest, progress)
                await asyncio.to_thread(self.store.put_image, record)
        return await asyncio.to_thread(self.store.pulled_image, record)

    async def _manifest(self, client: RegistryClient, ref: Reference, digest: str) -> Manifest:
        if self.store.has_blob(digest):
            raw = await asyncio.to_thread(self.store.read_blob, digest)
            doc = json.loads(raw)
            media = str(doc.get("mediaType") or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST))
            return Manifest(digest, media, raw, doc)
        manifest = await client.manifest(ref, digest)
        await asyncio.to_thread(self.store.put_blob, manifest.raw, digest)
        return manifest

    async def _fetch_image(
        self,
        client: RegistryClient,
        ref: Reference,
        top: Manifest,
        manifest: Manifest,
        progress: Progress | None,
    ) -> ImageRecord:
        cfg_desc = manifest.doc.get("config") or {}
        layer_descs = manifest.doc.get("layers") or []
        cfg_digest = str(cfg_desc.get("digest", ""))
        if not cfg_digest or not isinstance(layer_descs, list):
            raise ImagePullError(f"{ref}: the manifest {manifest.digest} has no config or layers")
        with self.store.lease([cfg_digest]):
            await self._blob(client, ref, cfg_digest, int(cfg_desc.get("size", -1)), None)
            diff_ids = self._diff_ids(ref, cfg_digest, len(layer_descs))
        layers = [(str(d.get("digest", "")), diff) for d, diff in zip(layer_descs, diff_ids, strict=True)]
        with self.store.lease([cfg_digest, *diff_ids, *(b for b, _ in layers)]):
            await self._fetch_layers(client, ref, layer_descs, layers, progress)
        size = len(top.raw) + int(cfg_desc.get("size", 0)) + sum(int(d.get("size", 0)) for d in layer_descs)
        if top is not manifest:
            size += len(manifest.raw)
        now = time.time()
        return ImageRecord(str(ref), top.digest, manifest.digest, cfg_digest, layers, size, now, now)

    async def _fetch_layers(
        self,
        client: RegistryClient,
        ref: Reference,
        layer_descs: builtins.list[dict[str, Any]],
        layers: builtins.list[tuple[str, str]],
        progress: Progress | None,
    ) -> None:
        """Download the missing layers (a few at a time), then unpack them in order."""
        diff_ids = [diff for _, diff in layers]
        sem = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)

        async def fetch(desc: dict[str, Any], diff_id: str) -> None:
            if not self.store.has_layer(diff_id):
                async with sem:
                    await self._blob(
                        client, ref, str(desc.get("digest", "")), int(desc.get("size", -1)), progress
                    )

        # a TaskGroup (not gather): when one layer fails, the other downloads are cancelled and
        # awaited, so none keeps writing into the store after the pull has failed
        try:
            async with asyncio.TaskGroup() as tg:
                for d, diff in zip(layer_descs, diff_ids, strict=True):
                    tg.create_task(fetch(d, diff))
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        for i, (blob, diff_id) in enumerate(layers):
            async with self._layer_locks.setdefault(diff_id, asyncio.Lock()):
                await asyncio.to_thread(self.store.unpack, blob, diff_id, diff_ids[:i])

    def _diff_ids(self, ref: Reference, cfg_digest: str, count: int) -> builtins.list[str]:
        try:
            cfg = json.loads(self.store.read_blob(cfg_digest))
            diff_ids = [str(d) for d in cfg["rootfs"]["diff_ids"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ImagePullError(f"{ref}: the image config {cfg_digest} is not valid ({e})") from e
        if len(diff_ids) != count:
            raise ImagePullError(
                f"{ref}: the image config lists {len(diff_ids)} layers but the manifest has {count}"
            )
        return diff_ids

    async def _blob(
        self, client: RegistryClient, ref: Reference, digest: str, size: int, progress: Progress | None
    ) -> None:
        if self.store.has_blob(digest):
            return
        tmp = self.store.temp_path(".blob")
        try:
            await client.download_blob(ref, digest, size, tmp, progress)
            await asyncio.to_thread(self.store.commit_blob, tmp, digest, size)
        except BaseException:
            tmp.unlink(missing_ok=True)  # failed or cancelled: leave nothing in tmp/
            raise
