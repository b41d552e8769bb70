"""Serves live_metrics' figures from the Locust master (or the local single-process
runner) while the run goes on, when BLOG_PERF_METRICS_PORT is set (``blog-perf
locust --metrics-port``; plain ``locust -f`` may set it too).

Invariants:

- Started in Locust's init event, which a forked or remote worker also
  fires: workers serve nothing (their figures reach the master). Locust
  imports this module before ``--processes`` forks, so nothing is bound at
  import time. A port that cannot be bound (blog-perf checks it before it
  starts Locust, but another process may take it meanwhile) is said in one
  line (live_metrics.CANNOT_SERVE) and the run goes on without live figures.
- Nothing is counted per request: the collector reads the runner and
  ``environment.stats`` at each scrape, so a run without a scraper pays nothing.
- In memory, own registry: nothing touches prometheus_client's default
  registry, and nothing is written to ``PROMETHEUS_MULTIPROC_DIR`` (runner
  pods inherit that variable from the image without the directory): it is
  dropped from the environment before prometheus_client is imported, and the
  collector builds its families itself, which never use files either way.

Imported by the blog's scenario (locustfile.py) and by locust_recording.py
(for a scenario of your own); its listener registers once per process.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Iterable

# Before prometheus_client is imported: it chooses file-backed values then.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from gevent.pywsgi import WSGIServer  # noqa: E402
from locust import events  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402
from prometheus_client import CollectorRegistry, make_wsgi_app  # noqa: E402  (after the line above)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

from .live_metrics import (  # noqa: E402
    BUCKETS_S, CANNOT_SERVE, FAILURES, MAX_ENDPOINTS, OTHER, OTHER_NAMES, REQUESTS, RESPONSE_TIME, START_TIME, STATE,
    STATES, TARGET_USERS, USERS, WORKERS, EndpointLabels, LiveMetrics, cumulative_buckets,
)


@dataclass
class _Endpoint:
    requests: int = 0
    failures: int = 0
    sum_ms: float = 0.0
    times: dict[int, int] = field(default_factory=dict)


class RunCollector:
    """The figures of one Locust environment (master or local runner), read
    at each scrape. ``started_at``: unix time the load started (None before)."""

    def __init__(self, environment, run_name: str | None = None, limit: int = MAX_ENDPOINTS):
        self.environment = environment
        self.run = {"run": run_name} if run_name else {}
        self.labels = EndpointLabels(limit)
        self.started_at: float | None = None

    def _gauge(self, name: str, documentation: str, value: float | None = None, labels: Iterable[str] = ()):
        family = GaugeMetricFamily(name, documentation, labels=[*self.run, *labels])
        if value is not None:
            family.add_metric(list(self.run.values()), value)
        return family

    def _endpoints(self) -> dict[tuple[str, str], _Endpoint]:
        merged: dict[tuple[str, str], _Endpoint] = {}
        for entry in list(self.environment.stats.entries.values()):
            endpoint = merged.setdefault(self.labels(entry.method or "", entry.name or ""), _Endpoint())
            endpoint.requests += entry.num_requests
            endpoint.failures += entry.num_failures
            endpoint.sum_ms += entry.total_response_time
            for ms, count in entry.response_times.items():
                endpoint.times[ms] = endpoint.times.get(ms, 0) + count
        return merged

    def collect(self):
        runner = self.environment.runner
        run = list(self.run.values())
        yield self._gauge(USERS, "Locust users running now (on all workers).", runner.user_count if runner else 0)
        yield self._gauge(TARGET_USERS, "Users the run is ramping to.", runner.target_user_count if runner else 0)
        yield self._gauge(WORKERS, "Workers connected to the master (0: a single-process run).",
                          runner.worker_count if isinstance(runner, MasterRunner) else 0)  # a local one says 1
        state = self._gauge(STATE, "1 for the runner's state now, 0 for the others.", labels=["state"])
        current = runner.state if runner else "ready"
        for name in STATES:
            state.add_metric([*run, name], 1.0 if name == current else 0.0)
        yield state
        yield self._gauge(START_TIME, "Unix time the load started.", self.started_at)

        endpoints = self._endpoints()
        labels = [*self.run, "method", "name"]
        requests = CounterMetricFamily(REQUESTS, "Requests sent, failed ones included.", labels=labels)
        failures = CounterMetricFamily(FAILURES, "Requests that failed.", labels=labels)
        times = HistogramMetricFamily(RESPONSE_TIME, "Response times, failed requests included.", labels=labels)
        for (method, name), endpoint in endpoints.items():
            values = [*run, method, name]
            requests.add_metric(values, endpoint.requests)
            failures.add_metric(values, endpoint.failures)
            counts = cumulative_buckets(endpoint.times)
            buckets = [(floatToGoString(bound), count) for bound, count in zip(BUCKETS_S, counts)] + [("+Inf", counts[-1])]
            times.add_metric(values, buckets, endpoint.sum_ms / 1000)
        yield requests
        yield failures
        yield times
        yield self._gauge(OTHER_NAMES, f"Distinct (method, name) pairs past the first {self.labels.limit}, "
                          f"counted as method and name {OTHER}.", self.labels.others)


def registry_for(collector: RunCollector) -> CollectorRegistry:
    """A registry of its own (no process or GC collectors, nothing global)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


@events.init.add_listener
def _serve_live_metrics(environment, **_kwargs) -> None:
    settings = LiveMetrics.from_env()
    if settings is None or isinstance(environment.runner, WorkerRunner):
        return
    collector = RunCollector(environment, settings.run_name)
    # log=None: no access-log line per scrape in the run's log.
    server = WSGIServer((settings.host, settings.port), make_wsgi_app(registry_for(collector)), log=None)
    try:
        server.start()  # binds now; serves in its own greenlet
    except OSError as exc:
        # The run goes on unobserved rather than dying here: an exit from init leaves
        # --processes' forked workers waiting a minute for a master that is gone.
        # blog-perf checked the port before starting Locust, and notes this line.
        logging.getLogger("blog-perf").error(f"{CANNOT_SERVE} {settings.host}:{settings.port}: "
                                             f"{exc.strerror or exc}; the run goes on without them")
        return

    @environment.events.test_start.add_listener
    def _started(**_kw) -> None:
        if collector.started_at is None:
            collector.started_at = time.time()
