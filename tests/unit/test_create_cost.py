"""Per-create shortcuts must not change what a create answers (issue 3).

* ``validate_pod_create_spec`` remembers specs that passed and accepts them again without a walk;
  an invalid spec, a spec whose outcome depends on the pod name (ephemeral volumes) and a spec
  holding a null are still checked every time.
* ``schema.structural`` renders field paths only when it records an error or unknown field; the
  paths and Go messages stay those of sigs.k8s.io/json.
"""

from __future__ import annotations

import copy
from typing import Any

from kubelite.registry import defaults
from kubelite.registry.validation import common, pods
from kubelite.schema import structural


def _pod(name: str = "web-1", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], **spec},
    }
    defaults.apply_defaults("", "v1", "Pod", obj)
    return obj


def _fields(errs: list[Any]) -> list[str]:
    return [e.field for e in errs]


def test_repeated_clean_spec_is_accepted_from_the_cache() -> None:
    pods._CLEAN_SPECS.clear()
    assert pods.validate_pod_create_spec(_pod("a")) == []
    assert len(pods._CLEAN_SPECS) == 1
    assert pods.validate_pod_create_spec(_pod("b")) == []
    assert len(pods._CLEAN_SPECS) == 1


def test_invalid_spec_is_reported_every_time() -> None:
    pods._CLEAN_SPECS.clear()
    bad = _pod(restartPolicy="Sometimes")
    first = pods.validate_pod_create_spec(copy.deepcopy(bad))
    second = pods.validate_pod_create_spec(copy.deepcopy(bad))
    assert "spec.restartPolicy" in _fields(first)
    assert _fields(first) == _fields(second)
    assert not pods._CLEAN_SPECS


def test_a_changed_spec_is_checked_again() -> None:
    pods._CLEAN_SPECS.clear()
    assert pods.validate_pod_create_spec(_pod()) == []
    bad = _pod()
    bad["spec"]["containers"][0]["image"] = " nginx"
    assert _fields(pods.validate_pod_create_spec(bad)) == ["spec.containers[0].image"]


def test_ephemeral_volume_names_are_checked_per_pod() -> None:
    pods._CLEAN_SPECS.clear()
    volume = {
        "name": "scratch",
        "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
    }
    assert pods.validate_pod_create_spec(_pod("short", volumes=[copy.deepcopy(volume)])) == []
    too_long = _pod("x" * 250, volumes=[copy.deepcopy(volume)])
    assert "spec.volumes[0].name" in _fields(pods.validate_pod_create_spec(too_long))


def test_spec_with_null_is_not_cached() -> None:
    pods._CLEAN_SPECS.clear()
    assert pods.validate_pod_create_spec(_pod(nodeSelector=None)) == []
    assert not pods._CLEAN_SPECS


def test_cache_is_bounded() -> None:
    pods._CLEAN_SPECS.clear()
    for i in range(pods._CLEAN_SPECS_MAX + 5):
        assert pods.validate_pod_create_spec(_pod(hostname=f"h{i}")) == []
    assert len(pods._CLEAN_SPECS) <= pods._CLEAN_SPECS_MAX


def test_structural_paths_rendered_on_errors_only() -> None:
    obj = _pod()
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": "80"}]
    obj["spec"]["containers"][0]["imagee"] = "x"
    obj["spec"]["nodeSelector"] = {"zone": 5}
    errs, unknown = structural.check_kind(obj, "", "v1", "Pod") or ([], [])
    assert unknown == ["spec.containers[0].imagee"]
    by_field = {e.field: e.message for e in errs}
    assert by_field["spec.containers[0].ports[0].containerPort"] == (
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort"
        " of type int32"
    )
    assert by_field["spec.nodeSelector.zone"] == (
        "json: cannot unmarshal number into Go struct field PodSpec.spec.nodeSelector of type string"
    )


def test_structural_clean_pod_has_no_findings() -> None:
    assert structural.check_kind(_pod(), "", "v1", "Pod") == ([], [])


def test_structural_path_helpers() -> None:
    path: structural.Path = ((((None, "spec", 0), "containers", 0), 2, 2), "image", 0)
    assert structural.json_path_of(path) == "spec.containers[2].image"
    assert structural.go_path_of(path) == "spec.containers.image"
    assert structural.json_path_of((None, 0, structural.INDEX)) == "[0]"
    assert structural.json_path_of(((None, "data", 0), "a.b", structural.KEY)) == "data.a.b"
    assert structural.go_path_of(((None, "data", 0), "a.b", structural.KEY)) == "data"


def test_labels_known_good_pairs_skip_the_checks() -> None:
    common._VALID_LABELS.clear()
    assert common.validate_labels({"app": "web", "tier": "front"}, "metadata.labels") == []
    assert ("app", "web") in common._VALID_LABELS
    assert common.validate_labels({"app": "web", "tier": "front"}, "metadata.labels") == []


def test_labels_invalid_pairs_are_reported_every_time() -> None:
    common._VALID_LABELS.clear()
    for _ in range(2):
        errs = common.validate_labels({"app": "web", "bad key": "x", "v": "-no-"}, "metadata.labels")
        assert len(errs) == 2
        assert errs[0].field == errs[1].field == "metadata.labels"
        assert '"bad key"' in errs[0].message and '"-no-"' in errs[1].message
    assert {("app", "web")} == common._VALID_LABELS


def test_labels_non_string_values_are_not_remembered() -> None:
    common._VALID_LABELS.clear()
    assert common.validate_labels({"n": 5}, "metadata.labels") == []
    assert not common._VALID_LABELS


def test_labels_cache_is_bounded() -> None:
    common._VALID_LABELS.clear()
    for i in range(common._VALID_LABELS_MAX + 3):
        assert common.validate_labels({"k": f"v{i}"}, "metadata.labels") == []
    assert len(common._VALID_LABELS) <= common._VALID_LABELS_MAX
