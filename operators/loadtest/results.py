"""From the runner's summary line to a LoadTestResult and a verdict.

The verdict comes from ``perfcontract.judging.locust_checks``: the code behind
``blog-perf``'s exit code, so a LoadTest and a CI job judge alike; with
``spec.compare``, from ``perfcontract.baseline`` too, the rule of ``blog-perf compare``.
Failed (a threshold missed, the target unreachable, no baseline to judge by)
outranks Regressed (worse than the baseline beyond a tolerance), which outranks Passed.
"""
from __future__ import annotations

from dataclasses import dataclass

from perfcontract import baseline, capacity, faults, judging
from perfcontract.run_summary import MAX_REPORT_BYTES

from .baselines import Baseline
from .manifests import REPORT_KEY, report_path
from .names import report_configmap_name
from .schedule import parse_iso
from .spec import LoadTestSpec

PASSED, FAILED, REGRESSED = "Passed", "Failed", "Regressed"
# A custom locustfile can name any number of endpoints and errors: the result keeps the
# busiest ones, and no text longer than this, so it stays far below etcd's object limit.
MAX_ENDPOINTS, MAX_ERRORS, MAX_TEXT = 100, 50, 300


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reasons: list[str]
    checks: list[dict]
    # The run could not measure the blog (no answer at all): Failed whatever the thresholds say.
    target_unreachable: bool = False
    comparison: dict | None = None  # spec.compare's figures (perfcontract.baseline.record)
    capacity: dict | None = None  # spec.profile's steps, capacity and knee (perfcontract.capacity.analyse)
    faults: list | None = None  # spec.faults: each fault as applied, and what users felt (perfcontract.faults)


def _clean(value):
    """Drop None (an unmeasured figure), so the result holds only what was measured."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT - 1] + "…"
    return value


def _busiest(rows: list[dict], key: str, most: int) -> list[dict]:
    return sorted(rows, key=lambda row: -(row.get(key) or 0))[:most]


def _latency(source: dict) -> dict:
    return {"p50": source.get("p50_ms"), "p90": source.get("p90_ms"), "p95": source.get("p95_ms"),
            "p99": source.get("p99_ms")}


def _faults(spec: LoadTestSpec, timeline, applied: list | None) -> tuple[list[dict], list[dict]]:
    """Each fault of the spec: as the status recorded it and as users felt it; and their checks."""
    points = faults.timeline_from(timeline)
    recorded = {e.get("index"): e for e in applied or [] if isinstance(e, dict)}
    t = spec.thresholds
    out, checks = [], []
    for index, fault in enumerate(spec.faults):
        entry = recorded.get(index)
        at = parse_iso(entry.get("appliedAt")) if entry else None
        felt = faults.analyse(points, at.timestamp()) if at else {"note": "not applied: the run ended first"}
        out.append({"index": index, "afterSeconds": fault.after_seconds, "selector": fault.labels,
                    **({k: entry.get(k) for k in ("appliedAt", "pods", "outcome")} if entry else {}),
                    "errors": felt.get("errors"), "worstP95Ms": felt.get("worst_p95_ms"),
                    "normalP95Ms": felt.get("normal_p95_ms"), "normalErrorRate": felt.get("normal_error_rate"),
                    "recoverySeconds": felt.get("recovery_seconds"), "recovered": felt.get("recovered"),
                    "note": felt.get("note")})
        if t.max_recovery_seconds is not None:
            checks.append(judging.check(f"fault {index} recovery (s)", felt.get("recovery_seconds"),
                                        t.max_recovery_seconds))
        if t.max_errors_during_fault is not None:
            checks.append(judging.check(f"fault {index} failed requests", felt.get("errors"),
                                        t.max_errors_during_fault))
    return out, checks


def judge(summary: dict | None, spec: LoadTestSpec, found: Baseline | None = None, *, timeline=None,
          applied: list | None = None) -> Verdict:
    """The verdict on a run's summary: its thresholds; with ``found`` its baseline; with
    spec.faults the faults ``applied`` (the status's record) against the runner's ``timeline``."""
    t = spec.thresholds
    analysis = capacity.analyse(capacity.steps_from((summary or {}).get("steps")), spec.profile.slo) \
        if spec.profile else None
    checks = judging.locust_checks(summary, t.p95_ms, t.p99_ms, t.max_error_rate, t.min_rps, t.min_capacity_users,
                                   analysis["capacity_users"] if analysis else None)
    fault_records, fault_checks = _faults(spec, timeline, applied) if spec.faults else (None, [])
    checks += fault_checks
    reasons = [f"{c['check']}: measured {c['measured']}, limit {c['limit']} ({c['kind']})"
               for c in judging.failed(checks)]
    summary = summary or {}
    requests, failures = summary.get("requests") or 0, summary.get("failures") or 0
    unreachable = requests == 0 or failures >= requests
    if unreachable:
        reasons.insert(0, f"the target did not answer: {failures} of {requests} requests failed")
    comparison, regressed = None, []
    if found is not None and found.problem:
        reasons.append(f"cannot compare: {found.problem}")  # a gate without its reference must not pass
    elif found is not None:
        rows = baseline.compare(found.figures, baseline.figures_of(summary), spec.compare.tolerances)
        comparison = baseline.record(found.source, rows)
        regressed = baseline.reasons(rows)
    verdict = FAILED if reasons else REGRESSED if regressed else PASSED
    return Verdict(verdict, reasons + regressed, checks, unreachable, comparison, analysis, fault_records)


def parameters(record: dict, spec: LoadTestSpec) -> dict:
    """The load a run put on its target, as its LoadTestResult records it (and a baseline matches it)."""
    weights = ((record.get("parameters") or {}).get("task_weights")) or spec.weights
    return {"users": spec.users, "spawnRate": spec.spawn_rate, "duration": spec.duration,
            "workers": spec.workers, "accounts": spec.accounts, "weights": dict(weights),
            "thinkTime": {"min": spec.wait_min, "max": spec.wait_max},
            **({"accountsSecret": spec.accounts_secret[0]} if spec.accounts_secret else {})}


def target(record: dict, spec: LoadTestSpec) -> str:
    return record.get("target") or spec.target_url


def result_spec(test: str, run: str, record: dict, spec: LoadTestSpec, verdict: Verdict, report: dict) -> dict:
    """The LoadTestResult's spec: what was asked, what was measured, the verdict, where the report is."""
    summary = record.get("summary") or {}
    return _clean({
        "testName": test, "runName": run, "target": target(record, spec),
        "startTime": record.get("started_at"), "finishTime": record.get("finished_at"),
        "parameters": parameters(record, spec),
        "totals": {"requests": summary.get("requests", 0), "failures": summary.get("failures", 0),
                   "backpressure429": summary.get("backpressure_429"), "failureRate": summary.get("failure_rate"),
                   "rps": summary.get("rps"), "latencyMs": _latency(summary),
                   "nonAiLatencyMs": _latency(summary.get("non_ai") or {})},
        "endpoints": [{"method": e.get("method"), "name": e.get("name"), "requests": e.get("requests", 0),
                       "failures": e.get("failures", 0), "rps": e.get("rps"), "latencyMs": _latency(e)}
                      for e in _busiest(summary.get("entries", []), "requests", MAX_ENDPOINTS)],
        "errors": [{"method": e.get("method"), "name": e.get("name"), "error": e.get("error"),
                    "occurrences": e.get("occurrences")}
                   for e in _busiest(summary.get("errors", []), "occurrences", MAX_ERRORS)],
        "verdict": verdict.verdict, "reasons": verdict.reasons,
        "checks": [dict(c) for c in verdict.checks],
        "comparison": verdict.comparison,
        "profile": _profile(verdict.capacity, spec),
        "faults": verdict.faults,
        "report": report,
    })


_STEP_KEYS = {"failure_rate": "failureRate", "p50_ms": "p50Ms", "p95_ms": "p95Ms", "p99_ms": "p99Ms"}


def _profile(analysis: dict | None, spec: LoadTestSpec) -> dict | None:
    """A stepped run's part of the result: its steps (at most capacity.MAX_STEPS), capacity and knee."""
    if analysis is None:
        return None
    steps = spec.profile.steps
    return {"startUsers": steps.start, "endUsers": steps.end, "stepUsers": steps.step, "stepSeconds": steps.seconds,
            "slo": {"p95Ms": spec.profile.slo.p95_ms, "maxErrorRate": spec.profile.slo.max_error_rate},
            "capacityUsers": analysis["capacity_users"], "capacityRps": analysis["capacity_rps"],
            "capacityP95Ms": analysis["capacity_p95_ms"], "kneeUsers": analysis["knee_users"],
            "kneeP95Ms": analysis["knee_p95_ms"],
            "steps": [{_STEP_KEYS.get(k, k): v for k, v in step.items()} for step in analysis["steps"]]}


def headline(result: dict) -> dict:
    """The figures a LoadTest's status shows of its latest result."""
    totals = result["totals"]
    return _clean({"requests": totals.get("requests"), "failures": totals.get("failures"),
                   "errorRate": totals.get("failureRate"), "rps": totals.get("rps"),
                   "p95Ms": (totals.get("latencyMs") or {}).get("p95"),
                   "p99Ms": (totals.get("latencyMs") or {}).get("p99"),
                   "capacityUsers": (result.get("profile") or {}).get("capacityUsers")})


def report_entry(run: str, html: bytes | None, budget: int, room: int, claim: str | None) -> tuple[dict, bool]:
    """The result's ``report``, and whether its HTML is kept in a ConfigMap:
    only when the log carried it (``parse_report`` gives nothing over
    MAX_REPORT_BYTES, so what it gives fits a ConfigMap) and it fits the
    ``room`` left in this LoadTest's ``budget`` (operator.policy.maxReportBytes)."""
    kept = False
    if html is None:
        report = {"note": f"the report did not reach the log (missing, cut, or over {MAX_REPORT_BYTES} bytes)"}
    elif len(html) > room:
        report = {"bytes": len(html), "note": f"not kept: this LoadTest's reports would pass "
                                              f"operator.policy.maxReportBytes ({budget})"}
    else:
        kept = True
        report = {"configMap": report_configmap_name(run), "key": REPORT_KEY, "bytes": len(html)}
    if claim:  # the runner wrote it to the LoadTest's volume too
        report = {**report, "persistentVolumeClaim": claim, "path": report_path(run)}
        report.pop("note", None)
    return report, kept
