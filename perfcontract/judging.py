"""The one judging code: every pass/fail of a run is a ``Check``.

A check is a name, a measured figure, a limit and a kind (``max``: at most
the limit, ``min``: at least, ``equal``: exactly, ``below``: strictly under);
it passes when the figure meets the limit. A figure that was not measured
fails: an unmeasured run proves nothing.

Three things judge with it:
- the gates of CI and of the LoadTest operator (``locust_checks``, ``evaluate``):
  ``blog-perf``'s exit code and the operator's verdict both come from
  ``locust_checks`` (the operator calls it on the summary the runner prints),
  so a threshold means the same thing in CI and in the cluster;
- ``make bench``'s targets (loadtests/bench_targets.py);
- a comparison with a baseline (``perfcontract.baseline``: ``blog-perf compare``,
  ``blog-perf locust --baseline`` and a LoadTest's ``spec.compare``): a figure
  worse than the baseline's by more than its tolerance is a failed check.

The gates (--max-p95-ms, --max-p99-ms, --max-error-rate, --min-rps) look at:
- p95 / p99: Locust's non-AI p95 / p99, and the p95 / p99 of every non-AI
  concurrency endpoint at every level (AI generation is seconds by nature; it
  has its own targets).
- error rate: Locust's failure rate (deliberate 429s excluded), every
  concurrency level of every endpoint, and the cache test's failures.
- rps: Locust's mean RPS and each non-AI concurrency endpoint's peak throughput.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

AI_ENDPOINTS = {"ai", "ai-cached"}
MAX, MIN, EQUAL, BELOW = "max", "min", "equal", "below"
# kind -> (how a report writes it, whether a measured figure meets the limit)
KINDS = {MAX: ("≤", operator.le), MIN: ("≥", operator.ge), EQUAL: ("=", operator.eq), BELOW: ("<", operator.lt)}


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None
    limit: float
    kind: str = MAX

    @property
    def passed(self) -> bool:
        return self.measured is not None and KINDS[self.kind][1](self.measured, self.limit)

    @property
    def symbol(self) -> str:
        return KINDS[self.kind][0]

    def as_dict(self) -> dict:
        """The record results.json, the report and the operator's LoadTestResult keep."""
        return {"check": self.name, "limit": self.limit, "kind": self.kind, "measured": self.measured,
                "passed": self.passed}


def check(name: str, measured: float | None, limit: float, kind: str = MAX) -> dict:
    return Check(name, measured, limit, kind).as_dict()


def locust_checks(summary: dict | None, max_p95_ms: float | None = None, max_p99_ms: float | None = None,
                  max_error_rate: float | None = None, min_rps: float | None = None,
                  min_capacity_users: float | None = None, capacity_users: float | None = None) -> list[dict]:
    """The gates on one Locust run's summary (the keys of loadtests/locust_output.py's write_summary);
    a stepped run's ``capacity_users`` comes from perfcontract.capacity.analyse of its steps."""
    summary = summary or {}
    non_ai = summary.get("non_ai") or {}
    checks: list[dict] = []
    if max_p95_ms is not None:
        checks.append(check("locust non-AI p95 (ms)", non_ai.get("p95_ms"), max_p95_ms, MAX))
    if max_p99_ms is not None:
        checks.append(check("locust non-AI p99 (ms)", non_ai.get("p99_ms"), max_p99_ms, MAX))
    if max_error_rate is not None:
        checks.append(check("locust failure rate", summary.get("failure_rate"), max_error_rate, MAX))
    if min_rps is not None:
        checks.append(check("locust requests/s", summary.get("rps"), min_rps, MIN))
    if min_capacity_users is not None:
        checks.append(check("capacity (users within the SLO)", capacity_users, min_capacity_users, MIN))
    return checks


def _concurrency_checks(endpoint: dict, max_p95_ms, max_error_rate, min_rps, max_p99_ms) -> list[dict]:
    name = endpoint["name"]
    levels = endpoint.get("levels", [])
    latency_gated = name not in AI_ENDPOINTS
    checks: list[dict] = []
    for level in levels:
        c = level["level"]
        if max_p95_ms is not None and latency_gated:
            checks.append(check(f"concurrency {name} c={c} p95 (ms)", level["latency_ms"]["p95"], max_p95_ms, MAX))
        if max_p99_ms is not None and latency_gated:
            checks.append(check(f"concurrency {name} c={c} p99 (ms)", level["latency_ms"].get("p99"),
                                max_p99_ms, MAX))
        if max_error_rate is not None:
            checks.append(check(f"concurrency {name} c={c} error rate", level.get("error_rate"),
                                max_error_rate, MAX))
    if min_rps is not None and latency_gated:
        peak = max((lv["throughput_rps"] for lv in levels if lv.get("throughput_rps") is not None), default=None)
        checks.append(check(f"concurrency {name} peak requests/s", peak, min_rps, MIN))
    return checks


def evaluate(document: dict, max_p95_ms: float | None = None, max_error_rate: float | None = None,
             min_rps: float | None = None, max_p99_ms: float | None = None,
             min_capacity_users: float | None = None) -> list[dict]:
    """The gates on a whole results.json document: Locust, every concurrency endpoint, the cache test."""
    runs = document.get("runs") or {}
    checks: list[dict] = []
    if runs.get("locust"):
        capacity_users = (runs["locust"].get("capacity") or {}).get("capacity_users")
        checks += locust_checks(runs["locust"].get("summary"), max_p95_ms, max_p99_ms, max_error_rate, min_rps,
                                min_capacity_users, capacity_users)
    for endpoint in (runs.get("concurrency") or {}).get("endpoints", []):
        checks += _concurrency_checks(endpoint, max_p95_ms, max_error_rate, min_rps, max_p99_ms)
    cache = runs.get("cache")
    if cache and max_error_rate is not None:
        checks.append(check("cache test failure rate", (cache.get("summary") or {}).get("failure_rate"),
                            max_error_rate, MAX))
    return checks


def failed(checks: list[dict]) -> list[dict]:
    return [c for c in checks if not c["passed"]]
