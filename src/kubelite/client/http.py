"""HTTPS transport for components that run as separate processes (``--kubeconfig``)."""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml


@dataclass(frozen=True)
class KubeConfig:
    server: str
    ca_pem: bytes
    token: str
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return b""


def load_kubeconfig(path: Path, context: str = "") -> KubeConfig:
    cfg = yaml.safe_load(path.read_text())
    ctx_name = context or cfg.get("current-context", "")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    base = path.parent
    return KubeConfig(
        server=cluster["server"],
        ca_pem=_data(cluster, "certificate-authority", base),
        token=user.get("token", ""),
        client_cert_pem=_data(user, "client-certificate", base),
        client_key_pem=_data(user, "client-key", base),
    )


def _ssl_context(cfg: KubeConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=cfg.ca_pem.decode() if cfg.ca_pem else None)
    if cfg.client_cert_pem:
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(cfg.client_cert_pem)
            cert.flush()
            key.write(cfg.client_key_pem)
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
    return ctx


class HTTPTransport:
    def __init__(self, cfg: KubeConfig, timeout: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        self.client = httpx.AsyncClient(
            base_url=cfg.server,
            verify=_ssl_context(cfg),
            headers=headers,
            timeout=httpx.Timeout(timeout, read=None),
            limits=httpx.Limits(max_connections=64),
        )

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        resp = await self.client.request(method, path, content=body, headers=headers)
        return resp.status_code, resp.content

    async def stream(self, method: str, path: str, headers: dict[str, str]) -> AsyncIterator[bytes]:
        async with self.client.stream(method, path, headers=headers) as resp:
            if resp.status_code >= 400:
                from kubelite.client.base import raise_for_status

                raise_for_status(resp.status_code, await resp.aread())
            async for chunk in resp.aiter_bytes():
                yield chunk

    async def close(self) -> None:
        await self.client.aclose()
