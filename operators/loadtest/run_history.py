"""Finished runs as Prometheus series, so a run's verdict and headline figures
stay queryable after its pods are gone, and a trend shows across releases.

The operator keeps no state of its own: this is a mirror of the
LoadTestResults, fed by kopf's watch of them (its first listing after a
restart rebuilds it) and read at scrape time. What the mirror holds is
bounded: the operator trims each LoadTest's results to its historyLimit, and
the mirror keeps at most ``MAX_PER_TEST`` per LoadTest and ``MAX_RESULTS`` in
all (the newest), whatever else creates results. Labels are cut to a label
value's 63 characters. The namespace is ``loadtest_namespace``: a label named
``namespace`` would be renamed by the scrape, which adds the operator's own.
"""
from __future__ import annotations

import threading
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily

from .results import headline

MAX_PER_TEST = 1000  # the CRD's historyLimit ceiling
MAX_RESULTS = 5000
LABELS = ["loadtest_namespace", "loadtest", "run", "verdict"]
# name -> (help, how to read it from a result's spec and its headline figures, the
# ones a LoadTest's status shows: results.headline)
SERIES = {
    "loadtest_result_requests_per_second": ("Mean requests per second of a finished run",
                                            lambda s, h: h.get("rps")),
    "loadtest_result_p95_seconds": ("p95 response time of a finished run (all requests)",
                                    lambda s, h: _ms(h.get("p95Ms"))),
    "loadtest_result_non_ai_p95_seconds": ("p95 of a finished run's non-AI requests (what the verdict gates)",
                                           lambda s, h: _ms((s["totals"].get("nonAiLatencyMs") or {}).get("p95"))),
    "loadtest_result_error_ratio": ("Share of a finished run's requests that failed (429 backpressure excluded)",
                                    lambda s, h: h.get("errorRate")),
    "loadtest_result_requests": ("Requests a finished run made", lambda s, h: h.get("requests")),
    "loadtest_result_start_time_seconds": ("When a finished run started (Unix time)",
                                           lambda s, h: _unix(s.get("startTime"))),
    "loadtest_result_end_time_seconds": ("When a finished run ended (Unix time)",
                                         lambda s, h: _unix(s.get("finishTime"))),
    "loadtest_result_passed": ("1 when a finished run's verdict is Passed, else 0",
                               lambda s, h: 1.0 if s.get("verdict") == "Passed" else 0.0),
}


def _ms(value):
    return None if value is None else value / 1000.0


def _unix(text):
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _headline(spec: dict) -> dict:
    try:
        return headline(spec)
    except (TypeError, AttributeError):  # a result some other writer made: its series are left out
        return {}


def _label(value) -> str:
    return str(value or "")[:63]


class RunHistory:
    """The mirror: (namespace, result name) -> (labels, spec)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], tuple[list[str], dict]] = {}

    def observe(self, event_type: str | None, body: dict) -> None:
        """One watch event of a LoadTestResult (None: kopf's initial listing)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        spec = body.get("spec") or {}
        with self._lock:
            if event_type == "DELETED" or not isinstance(spec.get("totals"), dict):
                self._results.pop(key, None)
                return
            labels = [_label(key[0]), _label(spec.get("testName")), _label(spec.get("runName") or key[1]),
                      _label(spec.get("verdict"))]
            self._results[key] = (labels, spec)
            if len(self._results) > MAX_RESULTS:
                self._trim()

    def _trim(self) -> None:
        newest_first = sorted(self._results.items(), key=lambda item: str(item[1][1].get("finishTime") or ""),
                              reverse=True)
        kept, per_test = {}, {}
        for key, (labels, spec) in newest_first:
            test = (labels[0], labels[1])
            per_test[test] = per_test.get(test, 0) + 1
            if per_test[test] <= MAX_PER_TEST and len(kept) < MAX_RESULTS:
                kept[key] = (labels, spec)
        self._results = kept

    def clear(self) -> None:
        with self._lock:
            self._results.clear()

    def collect(self):
        with self._lock:
            results = [(labels, spec, _headline(spec)) for labels, spec in self._results.values()]
        for name, (text, read) in SERIES.items():
            family = GaugeMetricFamily(name, text, labels=LABELS)
            for labels, spec, figures in results:
                try:
                    value = read(spec, figures)
                except (TypeError, AttributeError):
                    value = None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    family.add_metric(labels, float(value))
            yield family


HISTORY = RunHistory()
