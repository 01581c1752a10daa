"""HPA scaling behavior: stabilization windows and scaling policies, pure.

Mirrors ``normalizeDesiredReplicasWithBehaviors`` in
``pkg/controller/podautoscaler/horizontal.go``:

* stabilization: the recommendation is kept between the lowest recommendation of the
  scale-up window and the highest of the scale-down window (default 0 s up, 300 s down);
* rate limits: scale-up at most ``max(4 pods, +100 %)`` per 15 s, scale-down at most
  ``-100 %`` per 15 s by default, measured against the replicas at the start of each
  policy's period (``selectPolicy`` Max/Min/Disabled);
* the result is clamped to [minReplicas, maxReplicas].

Each step reports the ``ScalingLimited`` reason Kubernetes uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

DEFAULT_SCALE_UP: Obj = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN: Obj = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


@dataclass
class ScaleEvent:
    at: float
    change: int  # replicas added (> 0) or removed (< 0)


@dataclass
class History:
    """What the controller remembers of one HPA between syncs."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[ScaleEvent] = field(default_factory=list)


@dataclass
class Decision:
    replicas: int
    reason: str  # ScalingLimited reason ("DesiredWithinRange" when not limited)
    message: str

    @property
    def limited(self) -> bool:
        return self.reason != "DesiredWithinRange"


def rules(behavior: Obj | None, direction: str) -> Obj:
    default = DEFAULT_SCALE_UP if direction == "scaleUp" else DEFAULT_SCALE_DOWN
    given = (behavior or {}).get(direction) or {}
    out = dict(default)
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def stabilize(history: History, behavior: Obj | None, current: int, desired: int, now: float) -> int:
    """Apply the windows and remember ``desired`` (``stabilizeRecommendationWithBehaviors``)."""
    up_window = float(rules(behavior, "scaleUp")["stabilizationWindowSeconds"])
    down_window = float(rules(behavior, "scaleDown")["stabilizationWindowSeconds"])
    up, down = desired, desired
    for at, replicas in history.recommendations:
        if at > now - up_window:
            up = min(up, replicas)
        if at > now - down_window:
            down = max(down, replicas)
    recommendation = current
    recommendation = max(recommendation, up)
    recommendation = min(recommendation, down)
    keep = max(up_window, down_window)
    history.recommendations = [(a, r) for a, r in history.recommendations if a > now - keep]
    history.recommendations.append((now, desired))
    return recommendation


def _period_changes(events: list[ScaleEvent], period: float, now: float) -> tuple[int, int]:
    added = sum(e.change for e in events if e.at > now - period and e.change > 0)
    removed = sum(-e.change for e in events if e.at > now - period and e.change < 0)
    return added, removed


def scale_up_limit(current: int, history: History, rule: Obj, now: float) -> int:
    if rule.get("selectPolicy") == "Disabled":
        return current
    select_max = rule.get("selectPolicy", "Max") != "Min"
    proposals = []
    for policy in rule.get("policies") or []:
        added, removed = _period_changes(history.events, float(policy.get("periodSeconds", 15)), now)
        start = current - added + removed
        value = int(policy.get("value", 0))
        if policy.get("type") == "Pods":
            proposals.append(start + value)
        else:
            proposals.append(math.ceil(start * (1 + value / 100)))
    if not proposals:
        return current
    return max(proposals) if select_max else min(proposals)


def scale_down_limit(current: int, history: History, rule: Obj, now: float) -> int:
    if rule.get("selectPolicy") == "Disabled":
        return current
    select_max = rule.get("selectPolicy", "Max") != "Min"
    proposals = []
    for policy in rule.get("policies") or []:
        added, removed = _period_changes(history.events, float(policy.get("periodSeconds", 15)), now)
        start = current - added + removed
        value = int(policy.get("value", 0))
        if policy.get("type") == "Pods":
            proposals.append(start - value)
        else:
            proposals.append(int(start * (1 - value / 100)))
    if not proposals:
        return current
    return min(proposals) if select_max else max(proposals)


def limit(
    history: History, behavior: Obj | None, current: int, desired: int, lo: int, hi: int, now: float
) -> Decision:
    """``convertDesiredReplicasWithBehaviorRate``: the rate limits, then min/max."""
    if desired > current:
        cap = max(current, scale_up_limit(current, history, rules(behavior, "scaleUp"), now))
        if cap < hi and desired > cap:
            return Decision(
                cap,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        if desired > hi:
            return Decision(
                hi, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
            )
        return Decision(desired, "DesiredWithinRange", "the desired count is within the acceptable range")
    if desired < current:
        floor_ = min(current, scale_down_limit(current, history, rules(behavior, "scaleDown"), now))
        if floor_ > lo and desired < floor_:
            return Decision(
                floor_,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        if desired < lo:
            return Decision(
                lo, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
            )
        return Decision(desired, "DesiredWithinRange", "the desired count is within the acceptable range")
    if desired > hi:
        return Decision(
            hi, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        )
    if desired < lo:
        return Decision(
            lo, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        )
    return Decision(desired, "DesiredWithinRange", "the desired count is within the acceptable range")


def record_scale(history: History, behavior: Obj | None, before: int, after: int, now: float) -> None:
    """Remember a rescale for the policies' periods (``storeScaleEvent``)."""
    longest = 0.0
    for direction in ("scaleUp", "scaleDown"):
        for policy in rules(behavior, direction).get("policies") or []:
            longest = max(longest, float(policy.get("periodSeconds", 15)))
    history.events = [e for e in history.events if e.at > now - longest]
    history.events.append(ScaleEvent(now, after - before))
