"""What the master (or the local runner) of a Locust run writes to
BLOG_PERF_LOCUST_OUT=DIR (set by ``blog-perf locust``): DIR/history.jsonl (RPS
and interval p50/p95 every few seconds) and, at the end, DIR/summary.json
(every entry with its response-time histogram; the keys perfcontract.judging
reads). Workers write nothing: their figures reach the master.

Imported by the blog's scenario (locustfile.py) and by locust_recording.py
(for a scenario of your own); its listener registers once per process.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import gevent
from locust import events
from locust.runners import WorkerRunner

from . import blog_api
from .locust_messages import REFUSAL
from .stats import histogram_percentile

AI_NAME = blog_api.AI_REQUEST_NAME
BACKPRESSURE_NAME = blog_api.BACKPRESSURE_REQUEST_NAME
AI_NAMES = {AI_NAME, BACKPRESSURE_NAME}
HISTORY_INTERVAL = float(os.environ.get("BLOG_PERF_HISTORY_INTERVAL", "2"))


def _out_dir() -> Path | None:
    value = os.environ.get("BLOG_PERF_LOCUST_OUT")
    return Path(value) if value else None


def merged_histogram(entries, names=None, exclude=()) -> dict[int, int]:
    """The response-time histograms of the entries named (or all but ``exclude``), summed."""
    histogram: dict[int, int] = {}
    for entry in entries:
        if entry.name in exclude or (names is not None and entry.name not in names):
            continue
        for value, count in entry.response_times.items():
            histogram[value] = histogram.get(value, 0) + count
    return histogram


def _delta(now: dict[int, int], before: dict[int, int]) -> dict[int, int]:
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}


def _sample_history(environment, out: Path) -> None:
    stats = environment.stats
    started = time.time()
    before_all: dict[int, int] = {}
    before_reads: dict[int, int] = {}
    before = {"requests": 0, "failures": 0, "backpressure": 0, "time": started}
    with open(out / "history.jsonl", "a", encoding="utf-8") as handle:
        while True:
            gevent.sleep(HISTORY_INTERVAL)
            now = time.time()
            entries = list(stats.entries.values())
            all_times = merged_histogram(entries, exclude={BACKPRESSURE_NAME})
            read_times = merged_histogram(entries, exclude=AI_NAMES)
            backpressure = sum(e.num_requests for e in entries if e.name == BACKPRESSURE_NAME)
            requests = stats.total.num_requests
            failures = stats.total.num_failures
            span = max(1e-6, now - before["time"])
            interval_all, interval_reads = _delta(all_times, before_all), _delta(read_times, before_reads)
            line = {
                "t": round(now - started, 2), "time": now,
                "users": environment.runner.user_count if environment.runner else None,
                "rps": round((requests - before["requests"]) / span, 2),
                "failures_per_s": round((failures - before["failures"]) / span, 3),
                "backpressure_per_s": round((backpressure - before["backpressure"]) / span, 3),
                "p50_ms": histogram_percentile(interval_all, 50), "p95_ms": histogram_percentile(interval_all, 95),
                "non_ai_p50_ms": histogram_percentile(interval_reads, 50),
                "non_ai_p95_ms": histogram_percentile(interval_reads, 95),
                "requests": requests, "failures": failures, "backpressure": backpressure,
            }
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            before_all, before_reads = all_times, read_times
            before = {"requests": requests, "failures": failures, "backpressure": backpressure, "time": now}


def _entry(entry) -> dict:
    histogram = {int(k): int(v) for k, v in entry.response_times.items()}
    return {
        "method": entry.method, "name": entry.name,
        "requests": entry.num_requests, "failures": entry.num_failures,
        "mean_ms": entry.avg_response_time if entry.num_requests else None,
        "min_ms": entry.min_response_time, "max_ms": entry.max_response_time if entry.num_requests else None,
        "p50_ms": histogram_percentile(histogram, 50), "p90_ms": histogram_percentile(histogram, 90),
        "p95_ms": histogram_percentile(histogram, 95), "p99_ms": histogram_percentile(histogram, 99),
        "rps": entry.total_rps, "response_times": {str(k): v for k, v in sorted(histogram.items())},
    }


def _steps(out: Path) -> list | None:
    path = out / "steps.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_summary(environment, out: Path) -> None:
    stats = environment.stats
    entries = list(stats.entries.values())
    non_ai = merged_histogram(entries, exclude=AI_NAMES)
    ai = merged_histogram(entries, names={AI_NAME})
    backpressure = sum(e.num_requests for e in entries if e.name == BACKPRESSURE_NAME)
    counted = stats.total.num_requests - backpressure
    summary = {
        "start_time": stats.total.start_time, "last_request_time": stats.total.last_request_timestamp,
        "users": environment.runner.user_count if environment.runner else None,
        "requests": stats.total.num_requests, "failures": stats.total.num_failures,
        "backpressure_429": backpressure,
        "failure_rate": (stats.total.num_failures / counted) if counted > 0 else None,
        "rps": stats.total.total_rps,
        "p50_ms": histogram_percentile(merged_histogram(entries, exclude={BACKPRESSURE_NAME}), 50),
        "p90_ms": histogram_percentile(merged_histogram(entries, exclude={BACKPRESSURE_NAME}), 90),
        "p95_ms": histogram_percentile(merged_histogram(entries, exclude={BACKPRESSURE_NAME}), 95),
        "p99_ms": histogram_percentile(merged_histogram(entries, exclude={BACKPRESSURE_NAME}), 99),
        "non_ai": {"requests": sum(non_ai.values()), "p50_ms": histogram_percentile(non_ai, 50),
                   "p95_ms": histogram_percentile(non_ai, 95), "p99_ms": histogram_percentile(non_ai, 99)},
        "ai": {"requests": sum(ai.values()), "p50_ms": histogram_percentile(ai, 50),
               "p95_ms": histogram_percentile(ai, 95), "p99_ms": histogram_percentile(ai, 99)},
        "entries": [_entry(e) for e in sorted(entries, key=lambda e: (e.name, e.method))],
        "errors": [{"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                   for e in stats.errors.values()],
        "refused": REFUSAL.get("line"),  # the blog's rate limits stopped the run
        "steps": _steps(out),  # a stepped run's figures per step (locust_steps.py), else None
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    os.replace(tmp, out / "summary.json")


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    out = _out_dir()
    if out is None or isinstance(environment.runner, WorkerRunner):
        return
    out.mkdir(parents=True, exist_ok=True)
    sampler = gevent.spawn(_sample_history, environment, out)

    @events.quitting.add_listener
    def _on_quitting(environment, **_kw) -> None:
        sampler.kill(block=False)
        write_summary(environment, out)
