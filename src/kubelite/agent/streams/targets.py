"""Find what a stream request names on this node, with the kubelet's error messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kubelite.agent.runtime.base import ContainerState, Runtime
from kubelite.agent.streams.asgi import StreamError

Obj = dict[str, Any]


class NodeAgent(Protocol):
    """What the streams need from :class:`kubelite.agent.agent.Agent`."""

    node_name: str
    runtime: Runtime
    informer: Any
    workers: dict[str, Any]

    def container_for(
        self, namespace: str, pod: str, container: str
    ) -> tuple[Runtime, str, str, str] | None: ...


@dataclass(frozen=True)
class ContainerTarget:
    pod: Obj
    name: str
    runtime: Runtime
    container_id: str
    log_path: str
    previous_log_path: str

    async def running(self) -> bool:
        try:
            st = await self.runtime.container_status(self.container_id)
        except Exception:
            return False
        return st.state in (ContainerState.RUNNING, ContainerState.CREATED)


def find_pod(agent: NodeAgent, namespace: str, name: str) -> Obj:
    pod: Obj | None = agent.informer.get(f"{namespace}/{name}")
    if pod is None:
        raise StreamError(
            404, f'pod "{name}" not found in namespace "{namespace}" on node "{agent.node_name}"'
        )
    return pod


def _all_names(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [
        str(c["name"])
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
    ]


def _waiting_reason(pod: Obj, name: str) -> str:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == name:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                return str(waiting.get("reason") or "ContainerCreating")
    return "ContainerCreating"


def find_container(agent: NodeAgent, namespace: str, pod_name: str, container: str) -> ContainerTarget:
    pod = find_pod(agent, namespace, pod_name)
    if not container:
        ctrs = (pod.get("spec") or {}).get("containers") or []
        container = str(ctrs[0]["name"]) if ctrs else ""
    if container not in _all_names(pod):
        raise StreamError(400, f"container {container} is not valid for pod {pod_name}")
    found = agent.container_for(namespace, pod_name, container)
    if found is None:
        reason = _waiting_reason(pod, container)
        raise StreamError(400, f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}')
    runtime, cid, log_path, prev = found
    return ContainerTarget(pod, container, runtime, cid, log_path, prev)


def sandbox_of(agent: NodeAgent, pod: Obj) -> Any:
    """The pod's sandbox (``ip``, ``netns_path``), or None while it has none."""
    worker = agent.workers.get(str((pod.get("metadata") or {}).get("uid", "")))
    return None if worker is None else getattr(worker, "sandbox", None)
