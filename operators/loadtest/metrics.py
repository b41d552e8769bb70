"""The operator's Prometheus metrics, scraped by its ServiceMonitor.

One process, so its metrics live in memory. An inherited
PROMETHEUS_MULTIPROC_DIR (gunicorn's setting) would make prometheus_client
write files there when the first metric is defined, and the operator pod's
root filesystem is read-only: a crash at start. It chooses its mode on
import, so the variable goes before that.
"""
from __future__ import annotations

import os

os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import REGISTRY, Counter, start_http_server  # noqa: E402  (after the line above)

from .run_history import HISTORY  # noqa: E402

RUNS_STARTED = Counter("loadtest_runs_started_total", "Load-test runs started (Jobs created)")
RUNS_FINISHED = Counter("loadtest_runs_finished_total", "Load-test runs finished, by verdict and phase",
                        ["verdict", "phase"])
RECONCILE_PASSES = Counter("loadtest_reconcile_passes_total", "Reconcile passes over LoadTests")
RECONCILE_ERRORS = Counter("loadtest_reconcile_errors_total", "Reconcile passes that ended in an error")
# Every finished run still kept as a LoadTestResult: verdict and headline figures (run_history.py).
REGISTRY.register(HISTORY)


def serve(port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, addr=host)
