"""Create-only rules of kube-apiserver, against a real in-process API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.api import errors
from tests.unit.lifecycle_api import SERVICES, api_server


async def test_create_with_a_resource_version_is_a_bad_request(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "resourceVersion": "42"},
            "spec": {"ports": [{"port": 80}]},
        }
        with pytest.raises(
            errors.BadRequest, match="resourceVersion should not be set on objects to be created"
        ):
            await api.client.create(SERVICES, "default", svc)
        with pytest.raises(errors.NotFound):
            await api.client.get(SERVICES, "default", "web")
        del svc["metadata"]["resourceVersion"]
        created = await api.client.create(SERVICES, "default", svc)
        assert created["metadata"]["resourceVersion"]
