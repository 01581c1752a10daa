"""The agent endpoint's caller authentication (TokenReview-backed, cached)."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.agent.streams.auth import Authenticator, AuthError


class Reviews:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.calls = 0

    async def __call__(self, token: str) -> str | None:
        self.calls += 1
        return self.users.get(token)


def user(auth: Authenticator, headers: dict[str, str]) -> str:
    return asyncio.run(auth.user(headers))


def test_anonymous_and_unknown_tokens_are_401() -> None:
    auth = Authenticator(Reviews({"good": "system:kube-apiserver"}))
    for headers in (
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer bad"},
    ):
        with pytest.raises(AuthError) as e:
            user(auth, headers)
        assert e.value.code == 401


def test_allowed_users_pass_and_others_are_403() -> None:
    auth = Authenticator(Reviews({"api": "system:kube-apiserver", "adm": "admin", "dev": "developer"}))
    assert user(auth, {"authorization": "Bearer api"}) == "system:kube-apiserver"
    assert user(auth, {"authorization": "bearer adm"}) == "admin"
    with pytest.raises(AuthError) as e:
        user(auth, {"authorization": "Bearer dev"})
    assert e.value.code == 403 and "developer" in str(e.value)


def test_results_are_cached_and_expire() -> None:
    now = [0.0]
    reviews = Reviews({"t": "admin"})
    auth = Authenticator(reviews, clock=lambda: now[0])
    for _ in range(5):
        user(auth, {"authorization": "Bearer t"})
    assert reviews.calls == 1
    now[0] = 61.0
    user(auth, {"authorization": "Bearer t"})
    assert reviews.calls == 2


def test_review_failure_admits_nobody() -> None:
    async def broken(token: str) -> str | None:
        raise ConnectionError("api server down")

    with pytest.raises(AuthError) as e:
        user(Authenticator(broken), {"authorization": "Bearer t"})
    assert e.value.code == 401
