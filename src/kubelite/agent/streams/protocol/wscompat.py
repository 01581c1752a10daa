"""Let the ``websockets`` library accept Kubernetes' port-forward subprotocol name.

kubectl offers ``Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io``.  RFC 6455 asks for
subprotocol names to be HTTP tokens, which ``/`` is not, and ``websockets`` (used by uvicorn's
``websockets-sansio`` server and by the API server's client to the agents) rejects the handshake
with 400.  Go's WebSocket stacks - what Kubernetes runs - accept any comma-separated value, and
so does this parser (which still refuses empty names and control characters or whitespace).
:func:`install` replaces the parser in ``websockets.server`` and ``websockets.client`` (and the
client's offer check in ``websockets.asyncio.client``); it is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

import websockets.asyncio.client
import websockets.client
import websockets.server
from websockets.exceptions import InvalidHeaderFormat
from websockets.typing import Subprotocol


def parse_subprotocol(header: str) -> list[Subprotocol]:
    """Comma-separated subprotocol names; each a run of visible ASCII other than ``,``."""
    out: list[Subprotocol] = []
    for pos, raw in enumerate(header.split(",")):
        name = raw.strip(" \t")
        if not name:
            continue
        if any(not (0x21 <= ord(ch) <= 0x7E) for ch in name):
            raise InvalidHeaderFormat("Sec-WebSocket-Protocol", "invalid subprotocol name", header, pos)
        out.append(Subprotocol(name))
    if not out:
        raise InvalidHeaderFormat("Sec-WebSocket-Protocol", "empty subprotocol list", header, 0)
    return out


def validate_subprotocols(subprotocols: Sequence[Subprotocol]) -> None:
    """What the client may offer: names :func:`parse_subprotocol` would read back."""
    if isinstance(subprotocols, str) or not isinstance(subprotocols, Sequence):
        raise TypeError("subprotocols must be a list of names")
    for name in subprotocols:
        if not name or "," in name or parse_subprotocol(name) != [name]:
            raise ValueError(f"invalid subprotocol: {name}")


def install() -> None:
    websockets.server.parse_subprotocol = parse_subprotocol  # type: ignore[attr-defined]
    websockets.client.parse_subprotocol = parse_subprotocol  # type: ignore[attr-defined]
    websockets.asyncio.client.validate_subprotocols = validate_subprotocols  # type: ignore[attr-defined]
