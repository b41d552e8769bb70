"""The key figures of a results document, flat and named by a stable key
(``concurrency.home.c50.p95_ms``). The report's summary table and
``compare`` both read them from here, so they never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

LOWER, HIGHER = "lower", "higher"


@dataclass
class Figure:
    key: str
    label: str
    value: float | None
    unit: str          # ms | rps | ratio | x | MB | count | calls
    better: str | None  # lower | higher | None (informative only)
    section: str


def _get(data: dict | None, *path, default=None):
    for part in path:
        if not isinstance(data, dict):
            return default
        data = data.get(part)
    return default if data is None else data


def _endpoint_headlines(endpoint: dict, section: str, prefix: str) -> list[Figure]:
    """Per endpoint: peak throughput, p95 at the highest level, worst error rate."""
    levels = endpoint.get("levels", [])
    name, label = endpoint["name"], endpoint.get("label", endpoint["name"])
    rates = [lv["throughput_rps"] for lv in levels if lv.get("throughput_rps") is not None]
    errors = [lv["error_rate"] for lv in levels if lv.get("error_rate") is not None]
    top = levels[-1] if levels else {}
    figures = [
        Figure(f"{prefix}.{name}.peak_throughput_rps", f"{label} · peak throughput", max(rates, default=None),
               "rps", HIGHER, section),
        Figure(f"{prefix}.{name}.top_level_p95_ms", f"{label} · p95 at {top.get('level', '—')} concurrent",
               _get(top, "latency_ms", "p95"), "ms", LOWER, section),
        Figure(f"{prefix}.{name}.worst_error_rate", f"{label} · worst error rate", max(errors, default=None),
               "ratio", LOWER, section),
    ]
    ratios = [lv["ceiling_ratio"] for lv in levels if lv.get("ceiling_ratio") is not None]
    if ratios:
        figures.append(Figure(f"{prefix}.{name}.peak_ceiling_ratio", f"{label} · peak share of the Flask ceiling",
                              endpoint.get("peak_ceiling_ratio", max(ratios)), "ratio", HIGHER, section))
    return figures


def concurrency_figures(run: dict, section: str = "concurrency", prefix: str = "concurrency") -> list[Figure]:
    figures = []
    for endpoint in run.get("endpoints", []):
        figures += _endpoint_headlines(endpoint, section, prefix)
        for level in endpoint.get("levels", []):
            name, c = endpoint["name"], level["level"]
            base = f"{prefix}.{name}.c{c}"
            label = f"{endpoint.get('label', name)} · {c} concurrent"
            latency = level.get("latency_ms") or {}
            for pct in ("p50", "p95", "p99"):
                figures.append(Figure(f"{base}.{pct}_ms", f"{label} · {pct}", latency.get(pct), "ms", LOWER, section))
            figures.append(Figure(f"{base}.throughput_rps", f"{label} · throughput", level.get("throughput_rps"),
                                  "rps", HIGHER, section))
            figures.append(Figure(f"{base}.error_rate", f"{label} · error rate", level.get("error_rate"),
                                  "ratio", LOWER, section))
            if level.get("ceiling_ratio") is not None:
                figures.append(Figure(f"{base}.ceiling_ratio", f"{label} · share of the Flask ceiling",
                                      level["ceiling_ratio"], "ratio", HIGHER, section))
    return figures


def cache_figures(run: dict) -> list[Figure]:
    summary = run.get("summary") or {}
    figures = []
    for kind in ("uncached", "cached"):
        for stat in ("mean", "p50", "p95"):
            figures.append(Figure(f"cache.{kind}.{stat}_ms", f"{kind} generation · {stat}",
                                  _get(summary, f"{kind}_ms", stat), "ms", LOWER, "cache"))
    figures.append(Figure("cache.speedup_mean", "cache speed-up (mean uncached / mean cached)",
                          summary.get("speedup_mean"), "x", HIGHER, "cache"))
    figures.append(Figure("cache.failure_rate", "cache test failure rate", summary.get("failure_rate"),
                          "ratio", LOWER, "cache"))
    concurrent = run.get("concurrent") or {}
    if concurrent:
        clients = concurrent.get("clients")
        for pct in ("p50", "p95", "p99"):
            figures.append(Figure(f"cache.concurrent.{pct}_ms", f"cached generation at {clients} clients · {pct}",
                                  _get(concurrent, "latency_ms", pct), "ms", LOWER, "cache"))
        figures.append(Figure("cache.concurrent.error_rate", f"cached generation at {clients} clients · error rate",
                              concurrent.get("error_rate"), "ratio", LOWER, "cache"))
    return figures


def locust_figures(run: dict) -> list[Figure]:
    summary = run.get("summary") or {}
    return [
        Figure("locust.rps", "Locust requests per second", summary.get("rps"), "rps", HIGHER, "locust"),
        Figure("locust.failure_rate", "Locust failure rate (429 backpressure excluded)",
               summary.get("failure_rate"), "ratio", LOWER, "locust"),
        Figure("locust.failures", "Locust failed requests", summary.get("failures"), "count", LOWER, "locust"),
        Figure("locust.backpressure_429", "Locust deliberate 429s", summary.get("backpressure_429"), "count",
               None, "locust"),
        Figure("locust.non_ai.p50_ms", "Locust non-AI p50", _get(summary, "non_ai", "p50_ms"), "ms", LOWER, "locust"),
        Figure("locust.non_ai.p95_ms", "Locust non-AI p95", _get(summary, "non_ai", "p95_ms"), "ms", LOWER, "locust"),
        Figure("locust.ai.p95_ms", "Locust AI generation p95", _get(summary, "ai", "p95_ms"), "ms", LOWER, "locust"),
    ]


def bench_figures(bench: dict) -> list[Figure]:
    figures = []
    for target in bench.get("targets", []):
        figures.append(Figure(f"bench.{target['key']}", target["name"], target.get("measured"), target.get("unit", ""),
                              target.get("better"), "targets"))
    return figures


def key_figures(document: dict) -> list[Figure]:
    runs = document.get("runs") or {}
    figures: list[Figure] = []
    if document.get("bench"):
        figures += bench_figures(document["bench"])
    if runs.get("locust"):
        figures += locust_figures(runs["locust"])
    if runs.get("cache"):
        figures += cache_figures(runs["cache"])
    if runs.get("concurrency"):
        figures += concurrency_figures(runs["concurrency"])
    if runs.get("ceiling"):
        figures += concurrency_figures(runs["ceiling"], section="ceiling", prefix="ceiling")
    return figures


def headline_figures(document: dict) -> list[Figure]:
    """The figures worth a summary table: per-level figures stay in their sections."""
    return [f for f in key_figures(document) if not is_per_level(f.key)]


def is_per_level(key: str) -> bool:
    parts = key.split(".")
    return len(parts) >= 3 and parts[0] in ("concurrency", "ceiling") and parts[2].startswith("c") \
        and parts[2][1:].isdigit()
