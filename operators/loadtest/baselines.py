"""``spec.compare``: judge a run against a baseline, with the rule
``blog-perf compare`` uses (perfcontract.baseline).

The baseline is either the median of the last N Passed results of this
LoadTest that ran the same load (a changed ``users`` or task mix starts a new
series instead of reading as a regression), or one named LoadTestResult in the
LoadTest's namespace (a release's run kept as the reference). Results are read
from the API and treated like any other input: only numbers are taken from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from perfcontract import baseline

from . import history
from .names import OBJECT_NAME

MAX_PERCENT = 1000.0


class CompareSpecError(ValueError):
    """spec.compare cannot be used; the message names the field."""


@dataclass(frozen=True)
class CompareSpec:
    last_passed: int | None = None  # the median of this many Passed results of the same load
    result: str | None = None  # or this LoadTestResult
    tolerances: dict = field(default_factory=dict)  # figure key -> baseline.Tolerance (defaults filled in)


def _tolerance(key: str, raw) -> baseline.Tolerance:
    if not isinstance(raw, dict) or set(raw) - {"percent", "absolute"}:
        raise CompareSpecError(f"spec.compare.tolerances.{key} takes percent and absolute")
    default = baseline.DEFAULT_TOLERANCES[key]
    values = {}
    for part, high in (("percent", MAX_PERCENT), ("absolute", 1 if key == "errorRate" else 1e9)):
        value = raw.get(part, getattr(default, part))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise CompareSpecError(f"spec.compare.tolerances.{key}.{part} must be a number from 0 to {high:g}")
        values[part] = float(value)
    return baseline.Tolerance(**values)


def parse_compare(raw, history_limit: int) -> CompareSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CompareSpecError("spec.compare must be an object")
    source = raw.get("baseline")
    if not isinstance(source, dict) or len(set(source) & {"lastPassed", "result"}) != 1 or \
            set(source) - {"lastPassed", "result"}:
        raise CompareSpecError("spec.compare.baseline needs exactly one of lastPassed (a number of runs) "
                               "or result (a LoadTestResult's name)")
    last = source.get("lastPassed")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= history_limit):
        raise CompareSpecError(f"spec.compare.baseline.lastPassed must be a whole number from 1 to "
                               f"spec.historyLimit ({history_limit}): older results are not kept")
    name = source.get("result")
    if name is not None and (not isinstance(name, str) or not OBJECT_NAME.match(name)):
        raise CompareSpecError(f"spec.compare.baseline.result must be a LoadTestResult's name, not {name!r}")
    given = raw.get("tolerances") or {}
    if not isinstance(given, dict) or set(given) - set(baseline.BY_KEY):
        raise CompareSpecError(f"spec.compare.tolerances: the figures are {', '.join(baseline.BY_KEY)}")
    tolerances = {key: _tolerance(key, value) for key, value in given.items()}
    return CompareSpec(last, name, {**baseline.DEFAULT_TOLERANCES, **tolerances})



def figures_of_result(result: dict) -> dict[str, float | None]:
    """The judged figures of a LoadTestResult (the names of results.result_spec)."""
    totals = (result.get("spec") or {}).get("totals")
    totals = totals if isinstance(totals, dict) else {}
    non_ai = totals.get("nonAiLatencyMs") if isinstance(totals.get("nonAiLatencyMs"), dict) else {}
    number = baseline.finite_number
    return {"p95": number(non_ai.get("p95")), "p99": number(non_ai.get("p99")),
            "rps": number(totals.get("rps")), "errorRate": number(totals.get("failureRate"))}


def same_load(result: dict, parameters: dict, target: str) -> bool:
    spec = result.get("spec") or {}
    return isinstance(spec, dict) and spec.get("parameters") == parameters and spec.get("target") == target


@dataclass(frozen=True)
class Baseline:
    figures: dict  # figure key -> value (None: no run measured it)
    source: dict  # what the LoadTestResult records of where it came from
    problem: str | None = None  # a named baseline that cannot be read: the run cannot be judged


def last_passed(results_oldest_first: list[dict], count: int, parameters: dict, target: str) -> Baseline:
    """The median of the newest ``count`` Passed results of the same load; with fewer
    (the first runs of a pipeline) the median of those there are, and with none no baseline."""
    passed = [r for r in results_oldest_first if (r.get("spec") or {}).get("verdict") == "Passed"
              and same_load(r, parameters, target)][-count:]
    names = [r["metadata"]["name"] for r in passed]
    source = {"lastPassed": count, "results": names}
    if not passed:
        return Baseline({}, {**source, "note": "no earlier Passed run of this load yet: nothing to compare"})
    return Baseline(baseline.median([figures_of_result(r) for r in passed]), source)


def named(result: dict | None, name: str) -> Baseline:
    if result is None:
        return Baseline({}, {"result": name}, f"the baseline LoadTestResult {name} does not exist")
    return Baseline(figures_of_result(result), {"result": name, "resultVerdict": str(
        (result.get("spec") or {}).get("verdict"))[:20]})


def runner_args(found: Baseline | None, compare: CompareSpec) -> list[str]:
    """The master's ``blog-perf locust`` options that put the comparison in its report too
    (the verdict is still the operator's, judged again from the figures it collects)."""
    if found is None or found.problem or not any(v is not None for v in found.figures.values()):
        return []
    return ["--baseline-figures", baseline.format_figures(found.figures),
            "--baseline-tolerances", baseline.format_tolerances(compare.tolerances)]


def find(cluster, namespace: str, test: str, compare: CompareSpec, parameters: dict, target: str) -> Baseline:
    """The baseline ``spec.compare`` names, read from the API now (the run just ended)."""
    if compare.result is not None:
        try:
            result = cluster.read(namespace, "LoadTestResult", compare.result)
        except ApiException as exc:
            if exc.status != 404:
                raise
            result = None
        return named(result, compare.result)
    return last_passed(history.results_oldest_first(cluster, namespace, test), compare.last_passed, parameters,
                       target)
