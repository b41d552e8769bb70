"""Application metrics: the one place their names are spelled.

Dashboards (``charts/blog/dashboards``), alert rules
(``charts/blog/rules``) and tests read these names; change them here and
there together.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before the app is
imported, so prometheus_client writes every value to per-process files that
the metrics server in the gunicorn master (on ``METRICS_PORT``) sums up.
Gauges therefore say how to combine processes: ``live*`` modes drop the
values of dead workers (see ``child_exit`` in ``aiblog/gunicorn_conf.py``).

Two values are not per process: the metrics server computes them at scrape
time (``metrics_server.py``) and its value replaces whatever a worker set:
``blog_active_users`` (from Redis, the same for every worker and replica) and
``blog_jobs_queued`` (the length of the RQ queue). The gauges below keep those
names importable and give a value outside gunicorn.
"""
from __future__ import annotations

import os
from typing import Callable

# Set by the gunicorn master next to PROMETHEUS_MULTIPROC_DIR (metrics_server.py).
MULTIPROC_OWNER_ENV = "AIBLOG_METRICS_MASTER_PID"


def _multiprocess_for_gunicorn_only() -> None:
    """Only the gunicorn master that prepared the directory, and its workers,
    write metric files. Another process that inherited the variable (``aiblog
    seed``, ``blog-worker``, a shell in the pod) keeps its metrics in memory
    rather than crashing on a missing directory or adding to the server's
    counters. Runs before prometheus_client is imported: it chooses its mode then.
    """
    owner = os.environ.get(MULTIPROC_OWNER_ENV)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and owner not in (str(os.getppid()), str(os.getpid())):
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]


_multiprocess_for_gunicorn_only()

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402  (after the check above)

# Request metrics come from prometheus-flask-exporter (instrumentation.RequestMetrics)
# with this prefix: blog_http_request_total{method,status} and
# blog_http_request_duration_seconds{method,url_rule,status}.
HTTP_PREFIX = "blog"
HTTP_REQUESTS = f"{HTTP_PREFIX}_http_request_total"
HTTP_DURATION = f"{HTTP_PREFIX}_http_request_duration_seconds"
# Fine at the fast end: a cached page is served in about a millisecond.
# 0.25 s is the latency SLO threshold used by the alert rules.
HTTP_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

CACHE_REQUESTS = Counter(
    "blog_cache_requests_total", "Cache lookups by cache and result (hit|miss).",
    ["cache", "result"],
)
AI_GENERATION_SECONDS = Histogram(
    "blog_ai_generation_seconds", "Wall time of an LLM generation that reached the LLM.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
AI_REQUESTS = Counter(
    "blog_ai_requests_total", "AI generation requests by mode and outcome.",
    ["mode", "outcome"],
)
# Every known mode and outcome exists from the start at 0: a series born at
# 1 would hide its first increment from rate() and from the dashboards.
AI_MODES = ("sync", "stream", "background")
AI_OUTCOMES = ("generated", "cached", "deduplicated", "rejected", "failed")
for _mode in AI_MODES:
    for _outcome in AI_OUTCOMES:
        AI_REQUESTS.labels(mode=_mode, outcome=_outcome)
LLM_TTFT_SECONDS = Histogram(
    "blog_llm_time_to_first_token_seconds", "Time from LLM call to its first token.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
LLM_TOKENS = Counter("blog_llm_tokens_total", "Tokens received from the LLM.")
LLM_INFLIGHT = Gauge(
    "blog_llm_inflight", "LLM calls in progress.", multiprocess_mode="livesum",
)
LLM_CIRCUIT_OPEN = Gauge(
    "blog_llm_circuit_open", "1 while the LLM circuit breaker is open.",
    multiprocess_mode="livemax",
)
USER_REGISTRATIONS = Counter("blog_user_registrations_total", "Accounts registered.")
POSTS_CREATED = Counter("blog_posts_created_total", "Posts created.")
ACTIVE_USERS = Gauge(
    "blog_active_users", "Distinct logged-in users seen in the last 5 minutes.",
    multiprocess_mode="mostrecent",
)
JOBS_QUEUED = Gauge(
    "blog_jobs_queued", "Background generation jobs waiting in the queue.",
    multiprocess_mode="mostrecent",
)
DB_QUERY_SECONDS = Histogram(
    "blog_db_query_seconds", "Database statement execution time.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def cache_result(cache: str) -> Callable[[bool], None]:
    """A ``record(was_hit)`` function for one cache, with its label children
    resolved once (``labels()`` costs a lock and a dict lookup per call)."""
    hit = CACHE_REQUESTS.labels(cache=cache, result="hit")
    miss = CACHE_REQUESTS.labels(cache=cache, result="miss")
    return lambda was_hit: (hit if was_hit else miss).inc()
