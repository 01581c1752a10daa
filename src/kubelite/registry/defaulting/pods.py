"""Pod spec defaults, as ``pkg/apis/core/v1/defaults.go`` and its generated defaulters set them.

``default_pod_spec`` is ``SetDefaults_PodSpec`` plus everything nested (containers, ports,
probes, volumes); it applies to Pods and to every pod template. ``default_pod`` adds
``SetDefaults_Pod`` (requests from limits, enableServiceLinks, host-network ports), which
only Pods get.
"""

from __future__ import annotations

from typing import Any

from kubelite.registry.validation.pods import VOLUME_SOURCES

Obj = dict[str, Any]

_VOLUME_DEFAULT_MODE_SOURCES = ("secret", "configMap", "downwardAPI", "projected")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def pull_policy_for(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged image, ``IfNotPresent`` otherwise (digests included)."""
    if not image or image != image.strip():
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"
    return "IfNotPresent" if digest else "Always"


def default_pod_spec(spec: Obj) -> None:
    # Pod-level ``resources`` (PodLevelResources) is alpha in 1.32 and off by default:
    # kube-apiserver's dropDisabledPodFields removes it from pods and templates.
    spec.pop("resources", None)
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for vol in _dicts(spec.get("volumes")):
        _default_volume(vol)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for ctr in _dicts(spec.get(key)):
            default_container(ctr)


def default_container(ctr: Obj) -> None:
    """``SetDefaults_Container`` and the nested port / env / probe / lifecycle defaults."""
    if not ctr.get("imagePullPolicy"):
        image = ctr.get("image")
        ctr["imagePullPolicy"] = pull_policy_for(image if isinstance(image, str) else "")
    if not ctr.get("terminationMessagePath"):
        ctr["terminationMessagePath"] = "/dev/termination-log"
    if not ctr.get("terminationMessagePolicy"):
        ctr["terminationMessagePolicy"] = "File"
    for port in _dicts(ctr.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in _dicts(ctr.get("env")):
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict) and isinstance(value_from.get("fieldRef"), dict):
            _default_field_ref(value_from["fieldRef"])
    for key in _PROBES:
        if isinstance(ctr.get(key), dict):
            _default_probe(ctr[key])
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
                _default_http_get(handler["httpGet"])


def _default_probe(probe: Obj) -> None:
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(key):
            probe[key] = value
    if isinstance(probe.get("httpGet"), dict):
        _default_http_get(probe["httpGet"])
    grpc = probe.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_http_get(action: Obj) -> None:
    if not action.get("path"):
        action["path"] = "/"
    if not action.get("scheme"):
        action["scheme"] = "HTTP"


def _default_field_ref(ref: Obj) -> None:
    if not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _default_volume(vol: Obj) -> None:
    """``SetDefaults_Volume``: no source means ``emptyDir: {}``; modes 0644; hostPath type ''."""
    if not any(vol.get(k) is not None for k in VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for key in _VOLUME_DEFAULT_MODE_SOURCES:
        src = vol.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    host_path = vol.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    for item in _dicts(
        (vol.get("downwardAPI") or {}).get("items") if isinstance(vol.get("downwardAPI"), dict) else None
    ):
        if isinstance(item.get("fieldRef"), dict):
            _default_field_ref(item["fieldRef"])
    projected = vol.get("projected")
    if isinstance(projected, dict):
        _default_projected(projected)
    ephemeral = vol.get("ephemeral")
    if isinstance(ephemeral, dict) and isinstance(ephemeral.get("volumeClaimTemplate"), dict):
        spec = ephemeral["volumeClaimTemplate"].get("spec")
        if isinstance(spec, dict) and spec.get("volumeMode") is None:
            spec["volumeMode"] = "Filesystem"


def _default_projected(projected: Obj) -> None:
    for source in _dicts(projected.get("sources")):
        downward = source.get("downwardAPI")
        if isinstance(downward, dict):
            for item in _dicts(downward.get("items")):
                if isinstance(item.get("fieldRef"), dict):
                    _default_field_ref(item["fieldRef"])
        token = source.get("serviceAccountToken")
        if isinstance(token, dict) and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600


def default_pod(pod: Obj) -> None:
    """``SetObjectDefaults_Pod``: the spec defaults plus the Pod-only ones."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for ctr in _dicts(spec.get(key)):
            _requests_from_limits(ctr)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for ctr in _dicts(spec.get(key)):
                for port in _dicts(ctr.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort", 0)


def _requests_from_limits(ctr: Obj) -> None:
    resources = ctr.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    limits = resources["limits"]
    if not limits:
        return
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        requests = resources["requests"] = {}
    for name, value in limits.items():
        requests.setdefault(name, value)


def default_template(template: Any) -> None:
    """Defaults of a ``PodTemplateSpec`` embedded in a workload (its spec is created if absent)."""
    if not isinstance(template, dict):
        return
    if not isinstance(template.get("spec"), dict):
        template["spec"] = {}
    default_pod_spec(template["spec"])
