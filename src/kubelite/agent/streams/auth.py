"""Who may call the agent's endpoint (the kubelet's webhook authentication, simplified).

Callers present ``Authorization: Bearer <token>``; the agent asks the API server with a
``TokenReview`` who the token belongs to (results are cached for a minute, failures for a few
seconds) and admits only :data:`ALLOWED_USERS`: the API server's own identity and the cluster
admin.  No token, or a token the API server does not know: 401; a known user who is not allowed:
403.  Anonymous requests never reach a pod.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.client.base import Client, Resource

TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
ALLOWED_USERS = frozenset({"system:kube-apiserver", "admin"})
APISERVER_USER = "system:kube-apiserver"
OK_TTL, FAIL_TTL = 60.0, 5.0

Review = Callable[[str], Awaitable[str | None]]


class AuthError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def token_review(client: Client) -> Review:
    """A reviewer that asks the API server (``POST tokenreviews``) for the token's user."""

    async def review(token: str) -> str | None:
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        out = await client.create(TOKEN_REVIEWS, "", body)
        status = out.get("status") or {}
        if not status.get("authenticated"):
            return None
        return str((status.get("user") or {}).get("username") or "") or None

    return review


class Authenticator:
    def __init__(self, review: Review, clock: Callable[[], float] = time.monotonic) -> None:
        self.review = review
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def user(self, headers: dict[str, str]) -> str:
        """The allowed user making the request, or :class:`AuthError` (401/403)."""
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise AuthError(401, "Unauthorized")
        who = await self._lookup(auth[7:].strip())
        if who is None:
            raise AuthError(401, "Unauthorized")
        if who not in ALLOWED_USERS:
            raise AuthError(403, f"Forbidden (user={who}, verb=get, resource=nodes, subresource=proxy)")
        return who

    async def _lookup(self, token: str) -> str | None:
        now = self.clock()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            who = await self.review(token)
        except Exception:  # the API server is unreachable: nobody is admitted
            who = None
        self._cache[token] = (now + (OK_TTL if who else FAIL_TTL), who)
        if len(self._cache) > 1024:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        return who
