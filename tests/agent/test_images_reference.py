"""Image references are normalised like Docker's ``ParseNormalizedNamed`` plus the kubelet's default tag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.agent.images.reference import InvalidReferenceError, familiar, normalize, parse
from kubelite.agent.runtime.base import ImagePullError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("user/app:v1", "docker.io/user/app:v1"),
        ("index.docker.io/user/app", "docker.io/user/app:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v2", "localhost:5000/app:v2"),
        ("127.0.0.1:5000/demo/busybox:v1", "127.0.0.1:5000/demo/busybox:v1"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        (f"127.0.0.1:5000/a/b@{DIGEST}", f"127.0.0.1:5000/a/b@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("a.b-c/d__e-f", "a.b-c/d__e-f:latest"),  # "a.b-c" has a dot: it is a registry host
    ],
)
def test_normalises_like_docker(ref: str, want: str) -> None:
    assert normalize(ref) == want


def test_parts_and_digest_reference() -> None:
    r = parse(f"127.0.0.1:5000/demo/x@{DIGEST}")
    assert (r.domain, r.path, r.tag, r.digest) == ("127.0.0.1:5000", "demo/x", "", DIGEST)
    assert r.reference == DIGEST
    assert parse("busybox").registry_host == "registry-1.docker.io"
    assert str(parse("busybox:1").with_digest(DIGEST)) == f"docker.io/library/busybox@{DIGEST}"
    assert familiar(parse("busybox")) == "busybox:latest"


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("busybox:", "empty tag"),
        ("busy box", "repository name"),
        ("busybox@sha256:abc", "invalid digest format"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox@sha256:" + "a" * 63 + "g", "invalid digest format"),
        ("ab" * 32, "64-byte hexadecimal"),
        ("repo/-bad", "repository name"),
        ("host:port/x", "not a valid host"),
        ("x:" + "t" * 200, "tag"),
        ("a/" * 130 + "b", "255 characters"),
    ],
)
def test_invalid_references_have_clear_messages(ref: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError) as e:
        parse(ref)
    assert why in str(e.value)
    assert f'"{ref}"' in str(e.value)
    assert isinstance(e.value, ImagePullError)


_component = st.from_regex(r"[a-z0-9]{1,5}(?:[._-][a-z0-9]{1,5})?", fullmatch=True)


@given(
    st.lists(_component, min_size=1, max_size=3),
    st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)),
)
def test_normalised_form_is_a_fixed_point(parts: list[str], tag: str) -> None:
    ref = "/".join(parts) + (f":{tag}" if tag else "")
    once = normalize(ref)
    assert normalize(once) == once
    parsed = parse(once)
    assert parsed.tag == (tag or "latest")
    assert once.startswith(parsed.domain + "/")
