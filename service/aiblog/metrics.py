"""Application metrics: the one place their names are spelled.

Dashboards (``charts/blog/dashboards``), alert rules
(``charts/monitoring/rules``) and tests read these names; change them here and
there together.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before the app is
imported, so prometheus_client writes every value to per-process files that
the metrics server in the gunicorn master (on ``METRICS_PORT``) sums up.
Gauges therefore say how to combine processes: ``live*`` modes drop the
values of dead workers (see ``child_exit`` in ``service/gunicorn.conf.py``).

Two values are not per process: the metrics server computes them at scrape
time (``metrics_server.py``) and its value replaces whatever a worker set:
``blog_active_users`` (from Redis, the same for every worker and replica) and
``blog_jobs_queued`` (the length of the RQ queue). The gauges below keep those
names importable and give a value outside gunicorn.
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

# Request metrics come from prometheus-flask-exporter with this prefix:
# blog_http_request_total{method,status},
# blog_http_request_duration_seconds{method,url_rule,status},
# blog_http_request_exceptions_total{method,status}.
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
