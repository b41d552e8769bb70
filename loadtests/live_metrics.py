"""Live figures of a Locust run for Prometheus: the one place their names are spelled.

The Locust master (or the local single-process runner) of ``blog-perf locust
--metrics-port PORT`` serves them on ``/metrics`` while the run goes on
(locust_live.py: the collector and its server). The dashboard and the
operator's PodMonitor read these names; change them here and there together.

Families (every value read at scrape time from Locust's own figures, so they
end where summary.json ends):

- ``blog_loadtest_users``, ``blog_loadtest_target_users``: users running now
  (on all workers) and the number being ramped to;
- ``blog_loadtest_workers``: workers connected to the master (0: one process);
- ``blog_loadtest_state{state}``: 1 for the runner's state now, 0 for each
  other of ``STATES``;
- ``blog_loadtest_start_time_seconds``: unix time the load started (absent before);
- ``blog_loadtest_requests_total{method,name}``, ``blog_loadtest_failures_total{method,name}``;
- ``blog_loadtest_response_time_seconds{method,name}``: histogram, ``BUCKETS_S``;
- ``blog_loadtest_other_endpoints``: distinct (method, name) pairs past the cap.

Invariants:

- Bounded: at most ``MAX_ENDPOINTS`` (method, name) pairs get series of their
  own, the first ones the collector sees (Locust's order of first request),
  for as long as the process lives; later pairs share ``OTHER`` as both
  method and name. Label values are cut to ``MAX_LABEL_LENGTH``.
- Labels: ``method``, ``name`` (Locust's request name), ``state``, and, only
  when given (a local run's ``--run-name``), ``run`` on every series. Never
  ``namespace``, ``pod``, ``container``, ``endpoint``, ``job``, ``service`` or
  ``instance`` (the PodMonitor's target labels), nor ``loadtest``/``run`` in
  a cluster: those come from the pod's labels (``podTargetLabels``).

Imports neither Locust, gevent nor prometheus_client: anything may import the names.
"""
from __future__ import annotations

import os
import re
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from typing import Mapping


PREFIX = "blog_loadtest"
USERS = f"{PREFIX}_users"
TARGET_USERS = f"{PREFIX}_target_users"
WORKERS = f"{PREFIX}_workers"
STATE = f"{PREFIX}_state"
START_TIME = f"{PREFIX}_start_time_seconds"
REQUESTS = f"{PREFIX}_requests_total"
FAILURES = f"{PREFIX}_failures_total"
RESPONSE_TIME = f"{PREFIX}_response_time_seconds"
OTHER_NAMES = f"{PREFIX}_other_endpoints"
# Every family, as a scraper sees it (a histogram by its base name).
NAMES = (USERS, TARGET_USERS, WORKERS, STATE, START_TIME, REQUESTS, FAILURES, RESPONSE_TIME, OTHER_NAMES)

# Locust's runner states (locust.runners.STATE_*), each a series of STATE: 1 now, else 0.
STATES = ("ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing")
# A cached page is served in about a millisecond, an uncached AI generation in
# seconds to a minute: fine at the fast end, up to 60 s. Locust keeps its times
# rounded (whole ms below 100 ms, 10 ms below 1 s, 2 digits above), so a time
# on a bound may land in the next bucket up or down.
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BUCKETS_MS = tuple(bound * 1000 for bound in BUCKETS_S)
MAX_ENDPOINTS = 50
MAX_LABEL_LENGTH = 100
OTHER = "[other]"  # a route-template-like value no real request name is expected to take

METRICS_PATH = "/metrics"
DEFAULT_HOST = "127.0.0.1"
# The master's child Locust process learns its settings from these (blog-perf sets them).
PORT_ENV = "BLOG_PERF_METRICS_PORT"
HOST_ENV = "BLOG_PERF_METRICS_HOST"
RUN_ENV = "BLOG_PERF_METRICS_RUN"
# A run name is a Kubernetes label value, so local and cluster runs look alike.
RUN_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
# The line a Locust process logs when it cannot serve them (blog-perf looks for it).
CANNOT_SERVE = "cannot serve live metrics on"


@dataclass(frozen=True)
class LiveMetrics:
    """Where the master serves its live figures, and the optional ``run`` label."""
    port: int
    host: str = DEFAULT_HOST
    run_name: str | None = None

    def env(self) -> dict[str, str]:
        """The variables that tell the master's Locust process (locust_live.py)."""
        return {PORT_ENV: str(self.port), HOST_ENV: self.host, **({RUN_ENV: self.run_name} if self.run_name else {})}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{METRICS_PATH}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "LiveMetrics | None":
        if not environ.get(PORT_ENV):
            return None
        return cls(int(environ[PORT_ENV]), environ.get(HOST_ENV) or DEFAULT_HOST, environ.get(RUN_ENV) or None)


def cut(value: str, limit: int = MAX_LABEL_LENGTH) -> str:
    return value if len(value) <= limit else value[:limit]


class EndpointLabels:
    """(method, name) → its label values: the first ``limit`` pairs seen keep
    their own for good, every later pair gets (OTHER, OTHER)."""

    def __init__(self, limit: int = MAX_ENDPOINTS):
        self.limit = limit
        self._own: dict[tuple[str, str], tuple[str, str]] = {}
        self._other: set[tuple[str, str]] = set()

    def __call__(self, method: str, name: str) -> tuple[str, str]:
        key = (method, name)
        own = self._own.get(key)
        if own is not None:
            return own
        if key in self._other or len(self._own) >= self.limit:
            self._other.add(key)
            return OTHER, OTHER
        own = self._own[key] = (cut(str(method)), cut(str(name)))
        return own

    @property
    def others(self) -> int:
        """Distinct pairs counted under OTHER."""
        return len(self._other)


def cumulative_buckets(response_times: Mapping[int, int]) -> list[int]:
    """Locust's {rounded ms: count} as Prometheus' cumulative counts per BUCKETS_S bound (+Inf last)."""
    counts = [0] * (len(BUCKETS_S) + 1)
    for ms, count in response_times.items():
        counts[bisect_left(_BUCKETS_MS, ms)] += count  # the first bound >= ms; past the last: +Inf
    return list(accumulate(counts))
