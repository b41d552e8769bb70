"""Pass/fail gates for CI and operators: --max-p95-ms, --max-p99-ms, --max-error-rate, --min-rps.

One judging code: ``blog-perf``'s exit code and the LoadTest operator's verdict
both come from ``locust_checks`` (the operator calls it on the summary the
runner prints), so a threshold means the same thing in CI and in the cluster.

What each gate looks at:
- p95 / p99: Locust's non-AI p95 / p99, and the p95 / p99 of every non-AI
  concurrency endpoint at every level (AI generation is seconds by nature; it
  has its own targets).
- error rate: Locust's failure rate (deliberate 429s excluded), every
  concurrency level of every endpoint, and the cache test's failures.
- rps: Locust's mean RPS and each non-AI concurrency endpoint's peak throughput.

A gate whose figure was not measured fails: an unmeasured run proves nothing.
"""
from __future__ import annotations

AI_ENDPOINTS = {"ai", "ai-cached"}


def _check(name: str, measured: float | None, limit: float, kind: str) -> dict:
    if measured is None:
        passed = False
    elif kind == "max":
        passed = measured <= limit
    else:
        passed = measured >= limit
    return {"check": name, "limit": limit, "kind": kind, "measured": measured, "passed": passed}


def locust_checks(summary: dict | None, max_p95_ms: float | None = None, max_p99_ms: float | None = None,
                  max_error_rate: float | None = None, min_rps: float | None = None) -> list[dict]:
    """The gates on one Locust run's summary (locustfile.write_summary's keys)."""
    summary = summary or {}
    non_ai = summary.get("non_ai") or {}
    checks: list[dict] = []
    if max_p95_ms is not None:
        checks.append(_check("locust non-AI p95 (ms)", non_ai.get("p95_ms"), max_p95_ms, "max"))
    if max_p99_ms is not None:
        checks.append(_check("locust non-AI p99 (ms)", non_ai.get("p99_ms"), max_p99_ms, "max"))
    if max_error_rate is not None:
        checks.append(_check("locust failure rate", summary.get("failure_rate"), max_error_rate, "max"))
    if min_rps is not None:
        checks.append(_check("locust requests/s", summary.get("rps"), min_rps, "min"))
    return checks


def evaluate(document: dict, max_p95_ms: float | None = None, max_error_rate: float | None = None,
             min_rps: float | None = None, max_p99_ms: float | None = None) -> list[dict]:
    runs = document.get("runs") or {}
    checks: list[dict] = []
    if runs.get("locust"):
        checks += locust_checks(runs["locust"].get("summary"), max_p95_ms, max_p99_ms, max_error_rate, min_rps)
    for endpoint in (runs.get("concurrency") or {}).get("endpoints", []):
        name = endpoint["name"]
        levels = endpoint.get("levels", [])
        for level in levels:
            c = level["level"]
            if max_p95_ms is not None and name not in AI_ENDPOINTS:
                checks.append(_check(f"concurrency {name} c={c} p95 (ms)", level["latency_ms"]["p95"], max_p95_ms, "max"))
            if max_p99_ms is not None and name not in AI_ENDPOINTS:
                checks.append(_check(f"concurrency {name} c={c} p99 (ms)", level["latency_ms"].get("p99"),
                                     max_p99_ms, "max"))
            if max_error_rate is not None:
                checks.append(_check(f"concurrency {name} c={c} error rate", level.get("error_rate"),
                                     max_error_rate, "max"))
        if min_rps is not None and name not in AI_ENDPOINTS:
            peak = max((lv["throughput_rps"] for lv in levels if lv.get("throughput_rps") is not None), default=None)
            checks.append(_check(f"concurrency {name} peak requests/s", peak, min_rps, "min"))
    cache = runs.get("cache")
    if cache and max_error_rate is not None:
        checks.append(_check("cache test failure rate", (cache.get("summary") or {}).get("failure_rate"),
                             max_error_rate, "max"))
    return checks


def failed(checks: list[dict]) -> list[dict]:
    return [c for c in checks if not c["passed"]]
