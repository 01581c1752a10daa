"""StatefulSet controller: revision history helpers, pod identity, the sync algorithm, and
the controller against a real in-process API server."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.controllers import history, statefulset
from kubelite.controllers import statefulset_pods as sp
from kubelite.controllers.statefulset_sync import Revisions, StatefulSetSync, max_unavailable
from tests.unit.lifecycle_api import PODS, api_server, eventually, running, set_pod_status

Obj = dict[str, Any]
STS = Resource("apps", "v1", "statefulsets")
REVS = Resource("apps", "v1", "controllerrevisions")
PVCS = Resource("", "v1", "persistentvolumeclaims")


# ---------------------------------------------------------------------------- history


def test_fnv_known_vectors() -> None:
    assert history.fnv32(b"") == 0x811C9DC5
    assert history.fnv32(b"a") == 0x050C5D7E
    assert history.fnv32(b"foobar") == 0x31F0B262


def test_safe_encode_avoids_vowels_and_is_deterministic() -> None:
    out = history.safe_encode("1234567890")
    assert out == history.safe_encode("1234567890")
    assert not set(out) & set("aeiou")
    assert history.hash_revision_data({"a": 1}, 0) != history.hash_revision_data({"a": 1}, 1)


def test_revision_name_caps_prefix() -> None:
    assert history.revision_name("web", "abc") == "web-abc"
    assert history.revision_name("x" * 300, "h") == "x" * 223 + "-h"


templates = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"labels": st.dictionaries(st.sampled_from("abc"), st.text(max_size=3))}
        ),
        "spec": st.fixed_dictionaries({"containers": st.lists(st.fixed_dictionaries({"image": st.text()}))}),
    }
)


@given(templates, templates)
def test_apply_revision_restores_the_recorded_template(a: Obj, b: Obj) -> None:
    sts_a, sts_b = {"spec": {"template": a, "replicas": 2}}, {"spec": {"template": b}}
    rev = {"data": history.template_patch(sts_b)}
    out = history.apply_revision(sts_a, rev)
    assert out["spec"]["template"] == b and out["spec"]["replicas"] == 2
    assert sts_a["spec"]["template"] == a  # the input is not mutated
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"


def _rev(name: str, n: int) -> Obj:
    return {"metadata": {"name": name, "labels": {"h": name}}, "revision": n}


def test_prune_keeps_live_and_newest() -> None:
    revs = [_rev(f"r{i}", i) for i in range(1, 7)]
    pruned = history.revisions_to_prune(revs, {"r1", "r6"}, 2)
    assert [r["metadata"]["name"] for r in pruned] == ["r2", "r3"]
    assert history.revisions_to_prune(revs, set(), 10) == []
    assert history.revisions_to_prune(revs, set(), None) == []
    assert history.next_revision(revs) == 7 and history.next_revision([]) == 1


# ---------------------------------------------------------------------------- pods


def make_sts(replicas: int = 3, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": [{"name": "tmp"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "www", "labels": {"t": "x"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "podManagementPolicy": "OrderedReady",
        },
        "status": {},
    }
    body["spec"].update(spec)
    return body


def test_ordinals() -> None:
    assert sp.parent_and_ordinal({"metadata": {"name": "my-web-12"}}) == ("my-web", 12)
    assert sp.parent_and_ordinal({"metadata": {"name": "web"}}) == ("", -1)
    sts = make_sts(2, ordinals={"start": 5})
    assert (sp.start_ordinal(sts), sp.end_ordinal(sts)) == (5, 6)
    assert sp.in_ordinal_range({"metadata": {"name": "web-6"}}, sts)
    assert not sp.in_ordinal_range({"metadata": {"name": "web-4"}}, sts)


def test_new_pod_identity_and_storage() -> None:
    pod = sp.new_pod(make_sts(), 1, "web-abc")
    assert pod["metadata"]["name"] == "web-1" and pod["metadata"]["namespace"] == "ns"
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "nginx"
    assert pod["metadata"]["labels"] == {
        "app": "web",
        sp.POD_NAME_LABEL: "web-1",
        sp.POD_INDEX_LABEL: "1",
        "controller-revision-hash": "web-abc",
    }
    (ref,) = pod["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "StatefulSet",
        "set-uid",
        True,
        True,
    )
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["www"] == {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}
    assert "tmp" in vols
    assert sp.identity_matches(make_sts(), pod) and sp.storage_matches(make_sts(), pod)
    (claim,) = sp.claims_for(make_sts(), 1).values()
    assert claim["metadata"]["name"] == "www-web-1"
    assert claim["metadata"]["labels"] == {"t": "x", "app": "web"}


@pytest.mark.parametrize(
    ("deleted", "scaled", "in_range", "want"),
    [
        ("Retain", "Retain", True, (False, False)),
        ("Delete", "Retain", True, (True, False)),
        ("Delete", "Retain", False, (True, False)),
        ("Retain", "Delete", True, (False, False)),
        ("Retain", "Delete", False, (False, True)),
        ("Delete", "Delete", True, (True, False)),
        ("Delete", "Delete", False, (False, True)),
    ],
)
def test_claim_owners_follow_retention_policy(
    deleted: str, scaled: str, in_range: bool, want: tuple[bool, bool]
) -> None:
    sts = make_sts(2, persistentVolumeClaimRetentionPolicy={"whenDeleted": deleted, "whenScaled": scaled})
    pod = {"metadata": {"name": "web-1" if in_range else "web-5", "uid": "pod-uid"}}
    assert sp.wanted_claim_owners(sts, pod) == want
    claim = {"metadata": {"name": "c", "ownerReferences": [{"uid": "other", "kind": "X"}]}}
    refs = sp.claim_owner_refs(sts, pod, claim)
    assert ("set-uid" in {r["uid"] for r in refs}, "pod-uid" in {r["uid"] for r in refs}) == want
    assert refs[0]["uid"] == "other"
    assert sp.claim_owners_match(sts, pod, {"metadata": {"ownerReferences": refs}})


# ---------------------------------------------------------------------------- sync algorithm


class FakeControl:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.deleted: list[str] = []

    async def create_pod(self, sts: Obj, pod: Obj) -> None:
        self.created.append(pod["metadata"]["name"])

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        self.deleted.append(pod["metadata"]["name"])

    async def fix_identity(self, sts: Obj, pod: Obj) -> None:
        pass

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        pass

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        return True

    async def update_claims_policy(self, sts: Obj, pod: Obj) -> None:
        pass


def revs_of(sts: Obj, old_template: Obj | None = None) -> Revisions:
    update = {"metadata": {"name": "web-new"}, "data": history.template_patch(sts), "revision": 2}
    if old_template is None:
        return Revisions(update, update)
    old = {
        "metadata": {"name": "web-old"},
        "data": history.template_patch({"spec": {"template": old_template}}),
    }
    return Revisions(old, update)


def live_pod(sts: Obj, ord_: int, rev: str = "web-new", ready: bool = True, phase: str = "Running") -> Obj:
    pod = sp.new_pod(sts, ord_, rev)
    pod["metadata"]["uid"] = f"uid-{ord_}"
    conds = [
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": "2020-01-01T00:00:00Z",
        }
    ]
    pod["status"] = {"phase": phase, "conditions": conds}
    return pod


async def sync(sts: Obj, pods: list[Obj], revs: Revisions | None = None) -> tuple[FakeControl, Obj]:
    control = FakeControl()
    result = await StatefulSetSync(sts, revs or revs_of(sts), pods, control, time.time()).run()
    return control, result.status


async def test_ordered_ready_creates_one_at_a_time() -> None:
    sts = make_sts()
    control, status = await sync(sts, [])
    assert control.created == ["web-0"] and status["replicas"] == 0
    control, _ = await sync(sts, [live_pod(sts, 0, ready=False)])
    assert control.created == []
    control, status = await sync(sts, [live_pod(sts, 0)])
    assert control.created == ["web-1"]
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (1, 1, 1)


async def test_parallel_creates_all() -> None:
    sts = make_sts(podManagementPolicy="Parallel")
    control, _ = await sync(sts, [live_pod(sts, 1, ready=False)])
    assert sorted(control.created) == ["web-0", "web-2"]


async def test_scale_down_highest_first_when_all_healthy() -> None:
    sts = make_sts(1)
    pods = [live_pod(sts, i) for i in range(3)]
    control, status = await sync(sts, pods)
    assert control.deleted == ["web-2"] and status["replicas"] == 3
    pods[0] = live_pod(sts, 0, ready=False)
    control, _ = await sync(sts, pods)
    assert control.deleted == []  # an unhealthy replica blocks scale-down
    terminating = live_pod(sts, 2)
    terminating["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    control, _ = await sync(sts, [live_pod(sts, 0), live_pod(sts, 1), terminating])
    assert control.deleted == []  # one at a time: wait for web-2 to go


async def test_failed_replica_is_deleted_for_recreation() -> None:
    sts = make_sts(2)
    control, _ = await sync(sts, [live_pod(sts, 0, phase="Failed"), live_pod(sts, 1)])
    assert control.deleted == ["web-0"] and control.created == []


async def test_rolling_update_respects_partition_and_max_unavailable() -> None:
    old_template = copy.deepcopy(make_sts()["spec"]["template"])
    sts = make_sts(4)
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    revs = revs_of(sts, old_template)
    pods = [live_pod(sts, i, rev="web-old") for i in range(4)]
    control, status = await sync(sts, pods, revs)
    assert control.deleted == ["web-3"] and status["currentRevision"] == "web-old"

    sts["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 2, "maxUnavailable": 5}
    control, _ = await sync(sts, pods, revs)
    assert control.deleted == ["web-3", "web-2"]
    assert max_unavailable(sts, 4) == 5
    sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%"
    assert max_unavailable(sts, 5) == 2

    # pods missing below the partition are recreated at the current revision
    sts["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 2}
    control, _ = await sync(sts, pods[1:], revs)
    assert control.created == ["web-0"]

    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    control, _ = await sync(sts, pods, revs)
    assert control.deleted == []


async def test_complete_rolling_update_moves_current_revision() -> None:
    old_template = copy.deepcopy(make_sts()["spec"]["template"])
    sts = make_sts(2)
    revs = revs_of(sts, old_template)
    _, status = await sync(sts, [live_pod(sts, 0), live_pod(sts, 1)], revs)
    assert status["currentRevision"] == "web-new" and status["currentReplicas"] == 2


# ---------------------------------------------------------------------------- controller


async def _ready_all(client: Any, ns: str, names: list[str]) -> None:
    for n in names:
        await set_pod_status(client, ns, n)


async def test_controller_end_to_end_in_process(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [statefulset.new]):
        c = api.client
        body = make_sts(2)
        for k in ("uid", "generation", "namespace"):
            body["metadata"].pop(k)
        body.pop("status")
        body["spec"]["template"]["spec"]["volumes"] = []
        await c.create(STS, "default", body)

        async def names() -> list[str]:
            return sorted(p["metadata"]["name"] for p in (await c.list(PODS, "default"))["items"])

        assert await eventually(names) == ["web-0"]
        await asyncio.sleep(0.2)
        assert await names() == ["web-0"]
        await _ready_all(c, "default", ["web-0"])
        await eventually(lambda: _eq(names, ["web-0", "web-1"]))
        await _ready_all(c, "default", ["web-1"])

        async def status() -> Obj:
            s: Obj = (await c.get(STS, "default", "web"))["status"]
            return s if s.get("readyReplicas") == 2 else {}

        st_ = await eventually(status)
        assert st_["currentRevision"] == st_["updateRevision"]
        claims = sorted(p["metadata"]["name"] for p in (await c.list(PVCS, "default"))["items"])
        assert claims == ["www-web-0", "www-web-1"]
        (rev,) = (await c.list(REVS, "default"))["items"]
        assert rev["revision"] == 1 and rev["metadata"]["name"] == st_["updateRevision"]
        assert rev["metadata"]["labels"]["app"] == "web"
        assert rev["metadata"]["labels"][history.STATEFULSET_HASH_LABEL]
        assert rev["data"]["spec"]["template"]["$patch"] == "replace"

        # a template change creates revision 2; going back renumbers revision 1 to 3
        sts = await c.get(STS, "default", "web")
        sts["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        await c.update(STS, "default", sts)
        await eventually(lambda: _rev_numbers(c, [1, 2]))
        sts = await c.get(STS, "default", "web")
        sts["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
        await c.update(STS, "default", sts)
        await eventually(lambda: _rev_numbers(c, [2, 3]))


async def _eq(fn: Any, want: Any) -> bool:
    return bool(await fn() == want)


async def _rev_numbers(c: Any, want: list[int]) -> bool:
    return sorted(r["revision"] for r in (await c.list(REVS, "default"))["items"]) == want


async def test_start_ordinal_shifts_identities() -> None:
    sts = make_sts(2, ordinals={"start": 5})
    control, _ = await sync(sts, [])
    assert control.created == ["web-5"]
    control, _ = await sync(sts, [live_pod(sts, 5), live_pod(sts, 6), live_pod(sts, 0)])
    assert control.deleted == ["web-0"]  # out of [5, 7): condemned
