"""A client for the OCI distribution API (what ``docker pull`` and containerd speak).

Manifests are requested with the full ``Accept`` list (OCI and Docker schema2 manifests and
indexes; without it a registry hides OCI manifests or down-converts to schema1), resolved
with ``HEAD`` first and always verified against their digest.  Multi-platform indexes pick
``linux/<host arch>``.  Blobs are streamed to disk and checked for sha256 and size.

Authentication follows Docker: on a 401 the ``WWW-Authenticate`` challenge says ``Bearer``
(fetch a token from ``realm`` for ``service`` and ``scope=repository:<path>:pull``, with basic
credentials or an identity token when we have them, anonymously otherwise) or ``Basic``.
Registries on loopback addresses and the hosts configured as insecure are spoken to over
plain HTTP; everything else over HTTPS.  Every failure becomes an :class:`ImagePullError`
whose message says what to do: not found, unauthorized, unreachable, digest mismatch, or a
registry answering something that is not the distribution API.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import functools
import hashlib
import ipaddress
import json
import platform
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubelite.agent.images.reference import DOCKER_HUB, Reference
from kubelite.agent.runtime.base import ImagePullError, RegistryAuth

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))
MAX_MANIFEST_BYTES = 4 << 20
ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

Progress = Callable[[str, int, int], None]  # (digest, bytes done, bytes total)


class NotFoundError(ImagePullError):
    """The registry has no such repository, tag or blob."""


class UnauthorizedError(ImagePullError):
    """The registry refused our (or no) credentials."""


class RegistryUnavailableError(ImagePullError):
    """The registry could not be reached or failed (5xx)."""


class BadResponseError(ImagePullError):
    """The registry answered something that is not the distribution API."""


class DigestError(ImagePullError):
    """Content did not match its digest or size."""


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    raw: bytes
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) in OCI terms for this machine."""
    machine = platform.machine()
    arch = ARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8"}.get(machine, "")
    return "linux", arch, variant


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalize_registry_key(key: str) -> str:
    """A docker config ``auths`` key (``https://index.docker.io/v1/``, ``host:port/path``) as
    ``host[/path]``."""
    key = re.sub(r"^[a-z]+://", "", key.strip()).rstrip("/")
    host, _, path = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", DOCKER_HUB):
        host, path = DOCKER_HUB, "" if path in ("v1", "v2") else path
    elif path in ("v1", "v2"):
        path = ""
    return f"{host}/{path}" if path else host


def lookup_auth(auths: Mapping[str, RegistryAuth], ref: Reference) -> RegistryAuth | None:
    """The credentials whose key matches the reference best (host glob, then longest path prefix)."""
    best: tuple[int, RegistryAuth] | None = None
    for raw_key, auth in auths.items():
        key = normalize_registry_key(raw_key)
        host, _, path = key.partition("/")
        if not fnmatch.fnmatchcase(ref.domain, host):
            continue
        if path and not (ref.path == path or ref.path.startswith(path + "/")):
            continue
        if best is None or len(key) > best[0]:
            best = (len(key), auth)
    return best[1] if best else None


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"?([^",]*)"?', rest)}
    return scheme.lower(), params


def _short(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace").replace("\n", " ")
    return text + ("..." if len(body) > 120 else "")


def _registry_errors(body: bytes) -> str:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
    return ""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~100 ms: do it once per process."""
    return httpx.create_ssl_context()


class _LazyTLSTransport(httpx.AsyncBaseTransport):
    """The HTTPS transport, made on the first HTTPS request: its CA bundle costs ~40 ms of CPU and
    ~1.7 MB resident, which a node pulling only from plain-HTTP registries (loopback, insecure)
    never needs."""

    def __init__(self) -> None:
        self._inner: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport(verify=_tls_context())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def new_http_client(
    timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The registry client's HTTP client; with no ``transport`` given, plain HTTP needs no TLS
    setup and HTTPS gets the verified transport on first use (:class:`_LazyTLSTransport`)."""
    proxied = {"https", "all"} & set(urllib.request.getproxies())  # httpx's env proxies: keep them
    if transport is not None or proxied:
        kwargs: dict[str, Any] = {"transport": transport, "verify": _tls_context()}
    else:
        kwargs = {
            "transport": httpx.AsyncHTTPTransport(verify=False),  # only ever sees http:// URLs
            "mounts": {"https://": _LazyTLSTransport()},
        }
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=True,
        headers={"User-Agent": "kubelite/0.1 (containerd-compatible)"},
        **kwargs,
    )


class RegistryClient:
    """Talks to registries for one pull (keeps tokens per registry and repository)."""

    def __init__(
        self,
        auths: Mapping[str, RegistryAuth] | None = None,
        insecure: Iterable[str] = (),
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http``: a shared client (kept open by :meth:`aclose`), else one of our own."""
        self.auths = dict(auths or {})
        self.insecure = {normalize_registry_key(h) for h in insecure}
        self._owns_http = http is None
        self.http = http or new_http_client(timeout, transport)
        self._authz: dict[tuple[str, str], str] = {}

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def base_url(self, ref: Reference) -> str:
        host = ref.registry_host
        plain = is_loopback(host) or ref.domain in self.insecure or host in self.insecure
        return f"{'http' if plain else 'https'}://{host}/v2/{ref.path}"

    # -- transport with auth -----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _send(
        self, method: str, url: str, ref: Reference, headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        key = (ref.registry_host, ref.path)
        resp = await self._open(method, url, ref, headers, key)
        try:
            if resp.status_code == 401 and await self._authenticate(resp, ref, key):
                await resp.aclose()
                resp = await self._open(method, url, ref, headers, key)
            yield resp
        finally:
            await resp.aclose()

    async def _open(
        self, method: str, url: str, ref: Reference, headers: dict[str, str] | None, key: tuple[str, str]
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if key in self._authz:
            hdrs["Authorization"] = self._authz[key]
        try:
            return await self.http.send(self.http.build_request(method, url, headers=hdrs), stream=True)
        except httpx.ConnectError as e:
            raise RegistryUnavailableError(
                f"cannot connect to registry {ref.registry_host} ({url.split('/v2/')[0]}): "
                f"{e or type(e).__name__}"
            ) from e
        except httpx.TimeoutException as e:
            raise RegistryUnavailableError(
                f"registry {ref.registry_host} timed out ({type(e).__name__})"
            ) from e
        except (httpx.RemoteProtocolError, httpx.DecodingError) as e:
            raise BadResponseError(
                f"registry {ref.registry_host} did not answer with valid HTTP ({e}); is it really a "
                "registry, and does it speak HTTP or HTTPS (mark it insecure for plain HTTP)?"
            ) from e
        except httpx.HTTPError as e:
            raise RegistryUnavailableError(f"registry {ref.registry_host}: {type(e).__name__}: {e}") from e

    async def _authenticate(self, resp: httpx.Response, ref: Reference, key: tuple[str, str]) -> bool:
        if key in self._authz and not self._authz[key].startswith("Bearer "):
            return False  # basic credentials were already refused
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        creds = lookup_auth(self.auths, ref)
        if scheme == "basic":
            if creds is None or not creds.username:
                return False
            self._authz[key] = basic_header(creds.username, creds.password)
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        if key in self._authz:
            return False  # a fresh token was refused: not authorized
        token = await self._fetch_token(params, ref, creds)
        self._authz[key] = f"Bearer {token}"
        return True

    async def _fetch_token(self, params: dict[str, str], ref: Reference, creds: RegistryAuth | None) -> str:
        scope = params.get("scope") or f"repository:{ref.path}:pull"
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        try:
            if creds is not None and creds.token and not creds.username:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.token,
                    "client_id": "kubelite",
                    **query,
                }
                resp = await self.http.post(params["realm"], data=form)
            else:
                auth = httpx.BasicAuth(creds.username, creds.password) if creds and creds.username else None
                resp = await self.http.get(
                    params["realm"], params={**query, "client_id": "kubelite"}, auth=auth
                )
        except httpx.HTTPError as e:
            raise RegistryUnavailableError(f"token service {params['realm']} failed: {e}") from e
        if resp.status_code in (401, 403):
            raise UnauthorizedError(
                f"the token service of {ref.registry_host} refused the credentials for {ref.name} "
                f"(HTTP {resp.status_code}); check the imagePullSecrets"
            )
        try:
            doc = resp.json()
            return str(doc.get("token") or doc["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadResponseError(
                f"token service {params['realm']} answered HTTP {resp.status_code} without a token: "
                f"{_short(resp.content)!r}"
            ) from None

    # -- errors --------------------------------------------------------------------------------
    def _check(self, resp: httpx.Response, ref: Reference, what: str, body: bytes = b"") -> None:
        code = resp.status_code
        if code < 300:
            return
        detail = _registry_errors(body) or _short(body)
        detail = f": {detail}" if detail else ""
        if code == 404:
            raise NotFoundError(
                f"{what} not found: {ref.registry_host} has no {ref.name}:{ref.reference}{detail}"
            )
        if code in (401, 403):
            raise UnauthorizedError(
                f"pull access denied for {ref.name}, repository does not exist or may require authorization "
                f"(HTTP {code}{detail}); add an imagePullSecret for {ref.domain}"
            )
        if code == 429:
            raise RegistryUnavailableError(f"{ref.registry_host} is rate-limiting pulls (HTTP 429){detail}")
        if code >= 500:
            raise RegistryUnavailableError(f"{ref.registry_host} failed with HTTP {code}{detail}")
        raise BadResponseError(f"{ref.registry_host} answered HTTP {code} for {what}{detail}")

    # -- manifests -------------------------------------------------------------------------------
    async def resolve(self, ref: Reference) -> tuple[str, str]:
        """(digest, media type) the reference points to now (HEAD; GET when the registry hides it)."""
        if ref.digest:
            return ref.digest, ""
        url = f"{self.base_url(ref)}/manifests/{ref.reference}"
        async with self._send("HEAD", url, ref, {"Accept": ACCEPT}) as resp:
            self._check(resp, ref, "manifest")
            digest = resp.headers.get("Docker-Content-Digest", "")
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if digest.startswith("sha256:") and len(digest) == 71:
            return digest, media_type
        manifest = await self.manifest(ref, ref.reference)
        return manifest.digest, manifest.media_type

    async def manifest(self, ref: Reference, reference: str) -> Manifest:
        """GET a manifest (by tag or digest), verified against the digest it is known by."""
        url = f"{self.base_url(ref)}/manifests/{reference}"
        async with self._send("GET", url, ref, {"Accept": ACCEPT}) as resp:
            body = await self._read_limited(resp, ref)
            self._check(resp, ref, "manifest", body)
            header_digest = resp.headers.get("Docker-Content-Digest", "")
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if reference.startswith("sha256:") else header_digest
        if expected and expected != actual:
            raise DigestError(
                f"manifest of {ref.name}:{ref.reference} from {ref.registry_host} has digest {actual}, "
                f"expected {expected}: the registry sent corrupt or tampered content"
            )
        return self._decode_manifest(ref, body, content_type, actual)

    async def _read_limited(self, resp: httpx.Response, ref: Reference) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_MANIFEST_BYTES:
                    raise BadResponseError(f"{ref.registry_host} sent a manifest larger than 4 MiB")
                chunks.append(chunk)
        except httpx.HTTPError as e:
            raise BadResponseError(f"{ref.registry_host}: reading the manifest failed: {e}") from e
        return b"".join(chunks)

    def _decode_manifest(self, ref: Reference, body: bytes, content_type: str, digest: str) -> Manifest:
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError:
            raise BadResponseError(
                f"{ref.registry_host} answered the manifest request for {ref.name}:{ref.reference} with "
                f"something that is not an image manifest (Content-Type {content_type or 'none'}: "
                f"{_short(body)!r})"
            ) from None
        media_type = str(doc.get("mediaType") or content_type)
        if media_type not in (*MANIFESTS, *INDEXES):
            if media_type in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
                raise BadResponseError(
                    f"{ref.name}:{ref.reference} is a Docker schema 1 image, which is not supported; "
                    "re-push it with a current Docker or skopeo"
                )
            media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else ""
        if not media_type:
            raise BadResponseError(
                f"{ref.registry_host} sent a manifest for {ref.name}:{ref.reference} of unknown type "
                f"{content_type or 'none'}"
            )
        return Manifest(digest, media_type, body, doc)

    def pick_platform(self, ref: Reference, index: Manifest) -> dict[str, Any]:
        """The index entry for ``linux/<host arch>`` (the runtime can run nothing else)."""
        want_os, want_arch, want_variant = host_platform()
        candidates = []
        for entry in index.doc.get("manifests") or []:
            plat = entry.get("platform") or {}
            if plat.get("os") == want_os and plat.get("architecture") == want_arch:
                variant = plat.get("variant", "")
                candidates.append((0 if variant in ("", want_variant) else 1, entry))
        if not candidates:
            found = sorted(
                f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}"
                for e in index.doc.get("manifests") or []
            )
            raise NotFoundError(
                f"no image for platform {want_os}/{want_arch} in {ref.name}:{ref.reference} "
                f"(it has {', '.join(found) or 'no platforms'})"
            )
        candidates.sort(key=lambda c: c[0])
        return dict(candidates[0][1])

    # -- blobs -----------------------------------------------------------------------------------
    async def download_blob(
        self, ref: Reference, digest: str, size: int, dest: Path, progress: Progress | None = None
    ) -> None:
        """Stream a blob to ``dest``, verifying sha256 and size; ``dest`` is removed on failure."""
        url = f"{self.base_url(ref)}/blobs/{digest}"
        sha = hashlib.sha256()
        done = 0
        try:
            async with self._send("GET", url, ref) as resp:
                if resp.status_code >= 300:
                    self._check(resp, ref, f"blob {digest}", await resp.aread())
                with dest.open("wb") as out:
                    async for chunk in resp.aiter_raw(1 << 20):
                        done += len(chunk)
                        if size >= 0 and done > size:
                            raise DigestError(
                                f"blob {digest} of {ref.name}: registry sent more than {size} bytes"
                            )
                        sha.update(chunk)
                        out.write(chunk)
                        if progress:
                            progress(digest, done, size)
        except httpx.HTTPError as e:
            dest.unlink(missing_ok=True)
            raise RegistryUnavailableError(
                f"downloading blob {digest} from {ref.registry_host} failed: {e}"
            ) from e
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        actual = "sha256:" + sha.hexdigest()
        if actual != digest or (size >= 0 and done != size):
            dest.unlink(missing_ok=True)
            raise DigestError(
                f"blob {digest} of {ref.name} from {ref.registry_host} failed verification: got {done} bytes "
                f"with digest {actual} (expected {size} bytes): corrupt or tampered content"
            )
