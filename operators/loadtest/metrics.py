"""The operator's Prometheus metrics, scraped by its ServiceMonitor."""
from __future__ import annotations

from prometheus_client import Counter, start_http_server

RUNS_STARTED = Counter("loadtest_runs_started_total", "Load-test runs started (Jobs created)")
RUNS_FINISHED = Counter("loadtest_runs_finished_total", "Load-test runs finished, by verdict and phase",
                        ["verdict", "phase"])
RECONCILE_PASSES = Counter("loadtest_reconcile_passes_total", "Reconcile passes over LoadTests")
RECONCILE_ERRORS = Counter("loadtest_reconcile_errors_total", "Reconcile passes that ended in an error")


def serve(port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, addr=host)
