"""An in-memory API for the batch controllers' unit tests (Job, CronJob, TTL, PodGC).

Writes go straight into informer caches (as if the watch delivered them at once), with
resourceVersion checks on update, finalizers and graceful pod deletion, strategic
``$deleteFromPrimitiveList`` and JSON merge patches — enough of the API server's semantics
for the controllers' decisions to be observable.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import secrets
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Resource
from kubelite.machinery.informer import Informer, object_key

Obj = dict[str, Any]


def rfc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ManualClock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        self.t = start or dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.t

    def now(self) -> dt.datetime:
        return self.t

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append(((obj.get("metadata") or {}).get("name", ""), type_, reason, message))

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]

    async def flush(self) -> None:
        return None


def _merge(target: Obj, patch: Obj) -> Obj:
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            target[field] = [x for x in target.get(field) or [] if x not in v]
            if not target[field]:
                target.pop(field)
        elif v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target


class FakeAPI:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.rv = itertools.count(1)
        self.store: dict[str, dict[str, Obj]] = {}
        self.informers: dict[str, Informer] = {}
        self.deletes: list[tuple[str, str, Obj]] = []  # (plural, key, options)
        self.fail_create: set[str] = set()

    def informer(self, res: Resource) -> Informer:
        inf = self.informers.get(res.plural)
        if inf is None:
            inf = self.informers[res.plural] = Informer(self, res)  # type: ignore[arg-type]
            inf.synced.set()
        return inf

    def objects(self, plural: str) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.store.get(plural, {}).values()]

    def _key(self, res: Resource, ns: str, name: str) -> str:
        return f"{ns}/{name}" if res.namespaced and ns else name

    def _put(self, res: Resource, obj: Obj | None, key: str) -> None:
        bucket = self.store.setdefault(res.plural, {})
        if obj is None:
            bucket.pop(key, None)
        else:
            obj["metadata"]["resourceVersion"] = str(next(self.rv))
            bucket[key] = obj
        inf = self.informers.get(res.plural)
        if inf is not None:
            inf._set(key, copy.deepcopy(obj) if obj is not None else None)

    def seed(self, res: Resource, obj: Obj) -> Obj:
        """Store an object as-is (uid and timestamps added when missing)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", secrets.token_hex(8))
        meta.setdefault("creationTimestamp", rfc(self.clock()))
        self._put(res, obj, object_key(obj))
        return copy.deepcopy(obj)

    async def create(self, res: Resource, namespace: str, obj: Obj, **_: Any) -> Obj:
        if res.plural in self.fail_create:
            raise errors.Forbidden(f"{res.plural} is forbidden: exceeded quota")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = meta.pop("generateName", "") + secrets.token_hex(3)[:5]
        meta.pop("generateName", None)
        if res.namespaced:
            meta["namespace"] = namespace
        key = self._key(res, namespace, meta["name"])
        if key in self.store.get(res.plural, {}):
            raise errors.AlreadyExists(f'{res.plural} "{meta["name"]}" already exists')
        meta["uid"] = secrets.token_hex(8)
        meta["creationTimestamp"] = rfc(self.clock())
        self._put(res, obj, key)
        return copy.deepcopy(obj)

    async def get(self, res: Resource, namespace: str, name: str, subresource: str = "") -> Obj:
        obj = self.store.get(res.plural, {}).get(self._key(res, namespace, name))
        if obj is None:
            raise errors.NotFound(f'{res.plural} "{name}" not found')
        return copy.deepcopy(obj)

    async def list(self, res: Resource, namespace: str = "", **_: Any) -> Obj:
        items = [
            copy.deepcopy(o)
            for o in self.store.get(res.plural, {}).values()
            if not namespace or o["metadata"].get("namespace") == namespace
        ]
        return {"items": items, "metadata": {"resourceVersion": "1"}}

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", **_: Any
    ) -> Obj:
        key = self._key(res, namespace, obj["metadata"]["name"])
        cur = self.store.get(res.plural, {}).get(key)
        if cur is None:
            raise errors.NotFound(f'{res.plural} "{obj["metadata"]["name"]}" not found')
        if obj["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
            raise errors.Conflict(
                "the object has been modified; please apply your changes to the latest version"
            )
        new = copy.deepcopy(cur)
        if subresource == "status":
            new["status"] = copy.deepcopy(obj.get("status") or {})
        else:
            new = copy.deepcopy(obj)
            new["status"] = copy.deepcopy(cur.get("status") or {})
        self._put(res, new, key)
        return copy.deepcopy(new)

    async def patch(
        self, res: Resource, namespace: str, name: str, patch: Any, *, subresource: str = "", **_: Any
    ) -> Obj:
        key = self._key(res, namespace, name)
        cur = self.store.get(res.plural, {}).get(key)
        if cur is None:
            raise errors.NotFound(f'{res.plural} "{name}" not found')
        new = _merge(copy.deepcopy(cur), copy.deepcopy(patch))
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not self._graceful(res, new):
            self._put(res, None, key)
            return new
        self._put(res, new, key)
        return copy.deepcopy(new)

    def _graceful(self, res: Resource, obj: Obj) -> bool:
        phase = (obj.get("status") or {}).get("phase")
        return (
            res.plural == "pods"
            and bool((obj.get("spec") or {}).get("nodeName"))
            and phase
            not in (
                "Succeeded",
                "Failed",
            )
        )

    async def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        *,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
    ) -> Obj | None:
        key = self._key(res, namespace, name)
        cur = self.store.get(res.plural, {}).get(key)
        if cur is None:
            raise errors.NotFound(f'{res.plural} "{name}" not found')
        if preconditions and preconditions.get("uid") not in (None, cur["metadata"]["uid"]):
            raise errors.Conflict("Precondition failed: UID in precondition")
        self.deletes.append(
            (res.plural, key, {"propagationPolicy": propagation_policy, "grace": grace_period_seconds})
        )
        graceful = self._graceful(res, cur) and grace_period_seconds != 0
        if cur["metadata"].get("finalizers") or graceful:
            new = copy.deepcopy(cur)
            new["metadata"].setdefault("deletionTimestamp", rfc(self.clock()))
            self._put(res, new, key)
            return new
        self._put(res, None, key)
        return None

    def finish_graceful(self) -> None:
        """What a kubelet does: terminating pods end, and go once no finalizer holds them."""
        for key, pod in list(self.store.get("pods", {}).items()):
            if pod["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(pod)
                if (new.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    new.setdefault("status", {})["phase"] = "Failed"
                if new["metadata"].get("finalizers"):
                    self._put(Resource("", "v1", "pods"), new, key)
                else:
                    self._put(Resource("", "v1", "pods"), None, key)

    def set_pod_phase(self, key: str, phase: str, exit_code: int = 0, **extra: Any) -> None:
        pod = copy.deepcopy(self.store["pods"][key])
        status = pod.setdefault("status", {})
        status["phase"] = phase
        if phase in ("Succeeded", "Failed"):
            status["containerStatuses"] = [
                {
                    "name": c["name"],
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": "Completed" if exit_code == 0 else "Error",
                            "finishedAt": rfc(self.clock()),
                        }
                    },
                }
                for c in pod["spec"]["containers"]
            ]
            status["conditions"] = [{"type": "Ready", "status": "False"}]
        elif phase == "Running":
            status["conditions"] = [{"type": "Ready", "status": "True"}]
            pod["spec"].setdefault("nodeName", "node-1")
        status.update(extra)
        self._put(Resource("", "v1", "pods"), pod, key)
