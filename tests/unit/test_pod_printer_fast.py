"""The pod printer's speed-up changed nothing: random pods print as with the reference copy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.registry.printers.pods import pod_cells
from tests.unit._pod_printer_reference import pod_cells as reference_cells

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
times = st.sampled_from(["2026-01-02T03:00:00Z", "2026-01-01T00:00:00Z", "bad", "", None, 5])
texts = st.sampled_from(["", "Running", "Pending", "Succeeded", "Failed", "Completed", "NodeLost", "x"])
junk = st.one_of(st.none(), st.integers(-1, 3), st.text(max_size=2), st.just([]), st.just({}))


def _state() -> st.SearchStrategy[Any]:
    waiting = st.fixed_dictionaries(
        {}, optional={"reason": st.sampled_from(["", "PodInitializing", "CrashLoopBackOff"])}
    )
    terminated = st.fixed_dictionaries(
        {},
        optional={
            "reason": st.sampled_from(["", "Completed", "Error"]),
            "exitCode": st.one_of(st.integers(0, 2), junk),
            "signal": st.one_of(st.integers(0, 9), junk),
            "finishedAt": times,
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "waiting": st.one_of(waiting, junk),
            "terminated": st.one_of(terminated, junk),
            "running": st.just({}),
        },
    )


def _status_item() -> st.SearchStrategy[Any]:
    item = st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["a", "b", "s"]),
            "restartCount": st.one_of(st.integers(0, 3), junk),
            "ready": st.one_of(st.booleans(), junk),
            "started": st.one_of(st.booleans(), junk),
            "state": st.one_of(_state(), junk),
            "lastState": st.one_of(
                st.fixed_dictionaries({}, optional={"terminated": st.one_of(_state(), junk)}), junk
            ),
        },
    )
    return st.one_of(item, junk)


conditions = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["Ready", "Initialized", "PodScheduled", "gate"]),
                "status": st.sampled_from(["True", "False"]),
                "reason": st.sampled_from(["", "SchedulingGated"]),
            },
        ),
        junk,
    ),
    max_size=4,
)
containers = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["a", "b", "s"])},
            optional={"restartPolicy": st.sampled_from(["Always", "Never"])},
        ),
        junk,
    ),
    max_size=3,
)
spec = st.fixed_dictionaries(
    {},
    optional={
        "containers": st.one_of(containers, junk),
        "initContainers": st.one_of(containers, junk),
        "nodeName": st.one_of(st.sampled_from(["n1", ""]), junk),
        "readinessGates": st.one_of(
            st.lists(
                st.fixed_dictionaries({"conditionType": st.sampled_from(["gate", "Ready"])}), max_size=2
            ),
            junk,
        ),
    },
)
status = st.fixed_dictionaries(
    {},
    optional={
        "phase": texts,
        "reason": st.one_of(texts, junk),
        "conditions": st.one_of(conditions, junk),
        "containerStatuses": st.one_of(st.lists(_status_item(), max_size=3), junk),
        "initContainerStatuses": st.one_of(st.lists(_status_item(), max_size=3), junk),
        "podIP": st.one_of(st.sampled_from(["10.0.0.1", ""]), junk),
        "podIPs": st.one_of(
            st.lists(st.one_of(st.fixed_dictionaries({"ip": st.just("10.0.0.2")}), junk), max_size=2), junk
        ),
        "nominatedNodeName": st.one_of(st.just("n2"), junk),
    },
)
pods = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.just("p")},
            optional={"creationTimestamp": times, "deletionTimestamp": st.one_of(times, junk)},
        )
    },
    optional={"spec": st.one_of(spec, junk), "status": st.one_of(status, junk)},
)


@settings(max_examples=400, deadline=None)
@given(pod=pods)
def test_fast_pod_printer_equals_reference(pod: dict[str, Any]) -> None:
    assert pod_cells(pod, NOW) == reference_cells(pod, NOW)
