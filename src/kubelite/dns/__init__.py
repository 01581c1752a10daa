"""Cluster DNS (placeholder until the DNS server lands)."""

from __future__ import annotations

import argparse
from typing import Any

from kubelite.client.base import Client


async def component(client: Client, args: argparse.Namespace) -> Any:
    return None
