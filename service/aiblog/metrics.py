"""Application metrics: the one place their names are spelled.

Dashboards (``monitoring/dashboards``), alert rules (``monitoring/rules``) and
tests read these names; change them here and there together.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before the app is
imported, so prometheus_client writes every value to per-process files that
the metrics server (on ``METRICS_PORT``) sums up.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
ACTIVE_USERS = Gauge(
    "blog_active_users", "Distinct logged-in users seen in the last 5 minutes.",
    multiprocess_mode="mostrecent",
)
USER_REGISTRATIONS = Counter("blog_user_registrations_total", "Accounts registered.")
POSTS_CREATED = Counter("blog_posts_created_total", "Posts created.")
DB_QUERY_SECONDS = Histogram(
    "blog_db_query_seconds", "Database statement execution time.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
JOBS_QUEUED = Gauge(
    "blog_jobs_queued", "Background generation jobs waiting in the queue.",
    multiprocess_mode="mostrecent",
)


def cache_result(cache: str) -> "callable":
    hit = CACHE_REQUESTS.labels(cache=cache, result="hit")
    miss = CACHE_REQUESTS.labels(cache=cache, result="miss")
    return lambda was_hit: (hit if was_hit else miss).inc()
