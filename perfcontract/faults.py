"""Does it survive losing a pod? What users felt around a fault.

The runner records a timeline (``blog-perf``'s history: every 2 s the
cumulative requests and failures, the interval's requests per second and
non-AI p95, with the runner's wall-clock time); ``timeline`` makes it fit the
summary line (at most ``MAX_POINTS`` points: neighbours merge, keeping the
worst p95). The LoadTest operator knows when it applied each fault, and
``analyse`` says, for one fault:

- ``normal``: the median non-AI p95 and the error rate of the
  ``BEFORE_S`` seconds before it;
- ``errors``: the requests that failed from the fault until recovery (or the
  end of the run);
- ``worst_p95_ms``: the worst interval p95 in that window;
- ``recovery_seconds``: from the fault to the first of ``SETTLED_POINTS``
  points in a row that are back within the tolerance of normal: p95 within
  ``baseline``'s p95 tolerance (50 % or 10 ms), the error rate within its
  error-rate tolerance (0.5 points); None when it never came back.

Runner clocks and the operator's are compared directly: a cluster's nodes
keep NTP time, and one second of skew moves ``recovery_seconds`` by one.
"""
from __future__ import annotations

import math
import statistics

from .baseline import DEFAULT_TOLERANCES, finite_number

MAX_POINTS = 600  # 20 minutes of 2 s points; a longer run's neighbours merge to fit
BEFORE_S = 30.0
SETTLED_POINTS = 3
FIELDS = ("time", "users", "rps", "requests", "failures", "non_ai_p95_ms")



def _merge(points: list[dict]) -> dict:
    p95s = [p["non_ai_p95_ms"] for p in points if p.get("non_ai_p95_ms") is not None]
    rates = [p["rps"] for p in points if p.get("rps") is not None]
    return {"time": points[0]["time"], "users": points[-1].get("users"), "rps": sum(rates) / len(rates) if rates else None,
            "requests": points[-1].get("requests"), "failures": points[-1].get("failures"),
            "non_ai_p95_ms": max(p95s) if p95s else None}


def timeline(history: list[dict]) -> list[dict]:
    """The runner's history as the summary carries it: its fields only, at most MAX_POINTS points."""
    points = [{key: finite_number(line.get(key)) for key in FIELDS} for line in history
              if isinstance(line, dict) and finite_number(line.get("time")) is not None]
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / MAX_POINTS)
    return [_merge(points[i:i + size]) for i in range(0, len(points), size)]


def timeline_from(raw) -> list[dict]:
    """A summary's timeline, checked (a runner's bytes are hostile): numbers only, in time order."""
    if not isinstance(raw, list):
        return []
    return sorted(timeline([p for p in raw[:MAX_POINTS * 2] if isinstance(p, dict)]), key=lambda p: p["time"])


def _error_rate(point: dict, before: dict | None) -> float | None:
    if before is None or point.get("requests") is None or before.get("requests") is None:
        return None
    requests = point["requests"] - before["requests"]
    failures = (point.get("failures") or 0) - (before.get("failures") or 0)
    return failures / requests if requests > 0 else 0.0


def analyse(points: list[dict], applied_at: float) -> dict:
    """One fault, applied at ``applied_at`` (epoch seconds), against the run's timeline."""
    before = [p for p in points if applied_at - BEFORE_S <= p["time"] < applied_at]
    after = [p for p in points if p["time"] >= applied_at]
    last_before = before[-1] if before else None
    p95s = [p["non_ai_p95_ms"] for p in before if p.get("non_ai_p95_ms") is not None]
    normal_p95 = statistics.median(p95s) if p95s else None
    normal_errors = _error_rate(before[-1], before[0]) if len(before) > 1 else None
    if normal_p95 is None or last_before is None:
        return {"normal_p95_ms": None, "normal_error_rate": None, "errors": None, "worst_p95_ms": None,
                "recovery_seconds": None, "recovered": False,
                "note": f"no figures in the {BEFORE_S:g} s before the fault: apply it after the load has started"}
    p95_limit = normal_p95 + DEFAULT_TOLERANCES["p95"].allowed(normal_p95)
    error_limit = (normal_errors or 0.0) + DEFAULT_TOLERANCES["errorRate"].allowed(0.0)
    previous, ok = last_before, []
    for point in after:
        rate = _error_rate(point, previous)
        ok.append((point.get("non_ai_p95_ms") is None or point["non_ai_p95_ms"] <= p95_limit)
                  and (rate is None or rate <= error_limit))
        previous = point
    settled = next((i for i in range(len(after) - SETTLED_POINTS + 1) if all(ok[i:i + SETTLED_POINTS])), None)
    # The window the fault is judged over: to recovery, or to the end of the run.
    window = after[:settled] if settled is not None else after
    end = after[settled] if settled is not None and settled < len(after) else (after[-1] if after else last_before)
    worst = [p["non_ai_p95_ms"] for p in (window or after[:1]) if p.get("non_ai_p95_ms") is not None]
    return {"normal_p95_ms": normal_p95, "normal_error_rate": normal_errors,
            "errors": (end.get("failures") or 0) - (last_before.get("failures") or 0),
            "worst_p95_ms": max(worst) if worst else None,
            "recovery_seconds": (0.0 if settled == 0 else round(after[settled]["time"] - applied_at, 1))
            if settled is not None else None,
            "recovered": settled is not None}
