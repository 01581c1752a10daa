"""Image references, parsed and normalised the way Docker and the kubelet do it.

``busybox`` is ``docker.io/library/busybox:latest``; ``localhost:5000/a/b@sha256:<64 hex>`` keeps
its registry and pins a digest.  The first path component is a registry host only when it
contains ``.`` or ``:``, is ``localhost`` or has an upper-case letter (Docker's rule); Docker Hub
names gain ``library/`` when they have a single component; ``index.docker.io`` means
``docker.io``.  Like the kubelet, a reference with neither tag nor digest gets ``:latest``.
Invalid references raise :class:`InvalidReferenceError`, the kubelet's ``InvalidImageName``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kubelite.agent.runtime.base import ImagePullError

DOCKER_HUB = "docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReferenceError(ImagePullError, ValueError):
    """The image name cannot be parsed (the kubelet's ``InvalidImageName``)."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str  # "docker.io", "127.0.0.1:5000"
    path: str  # "library/busybox"
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """Where the registry API lives (Docker Hub answers on ``registry-1.docker.io``)."""
        return DOCKER_HUB_REGISTRY if self.domain == DOCKER_HUB else self.domain

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        """``name@digest`` (the form of a container status ``imageID``)."""
        return replace(self, tag="", digest=digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _fail(ref: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(f'couldn\'t parse image reference "{ref}": {why}')


def split_domain(name: str) -> tuple[str, str]:
    """Docker's split of a repository name into registry domain and path (before validation)."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first == first.lower()):
        domain, remainder = DOCKER_HUB, name
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


def _split_tag_digest(ref: str) -> tuple[str, str, str]:
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:  # a ':' after the last '/' separates the tag (not a registry port)
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise ValueError("invalid reference format: empty tag")
    return name, tag, digest


def _check_digest(ref: str, digest: str) -> None:
    if not _DIGEST_RE.match(digest):
        raise _fail(ref, f"invalid digest format {digest!r} (expected sha256:<64 hex digits>)")
    algo, _, hexpart = digest.partition(":")
    if algo not in _DIGEST_LENGTHS:
        raise _fail(ref, f"unsupported digest algorithm {algo!r}")
    if len(hexpart) != _DIGEST_LENGTHS[algo]:
        raise _fail(ref, f"invalid checksum digest length for {algo} ({len(hexpart)} hex digits)")


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``ref``; with ``default_tag`` add ``:latest`` when neither tag nor digest."""
    if not ref or ref != ref.strip():
        raise _fail(ref, "invalid reference format: empty or surrounded by white space")
    if _HEX64_RE.match(ref):
        raise _fail(ref, "cannot specify 64-byte hexadecimal strings (use sha256:<hex> as a digest)")
    try:
        name, tag, digest = _split_tag_digest(ref)
    except ValueError as e:
        raise _fail(ref, str(e)) from None
    domain, path = split_domain(name)
    if not _DOMAIN_RE.match(domain):
        raise _fail(ref, f"invalid reference format: registry host {domain!r} is not a valid host[:port]")
    if path != path.lower():
        raise _fail(ref, f"invalid reference format: repository name ({path}) must be lowercase")
    if not path or not _PATH_RE.match(path):
        raise _fail(
            ref,
            f"invalid reference format: repository name {path!r} may only contain lowercase letters, digits "
            "and separators (., _, __, -) between '/'-separated components",
        )
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise _fail(ref, f"repository name must not be more than {NAME_MAX} characters")
    if tag and not _TAG_RE.match(tag):
        raise _fail(
            ref, f"invalid reference format: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        )
    if digest:
        _check_digest(ref, digest)
    if default_tag and not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(ref: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``."""
    return str(parse(ref))


def familiar(ref: Reference) -> str:
    """The short form Docker prints: ``busybox:latest`` for ``docker.io/library/busybox:latest``."""
    out = str(ref)
    if ref.domain == DOCKER_HUB:
        out = out.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
    return out
