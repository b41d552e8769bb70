"""What a worker records for Prometheus: request metrics, DB timing, active users.

Nothing here serves ``/metrics``: under gunicorn the master process does, on
its own port (``metrics_server.py``), so the public port never exposes them.

Label cardinality is bounded whatever clients send: requests are labelled by
the matched route *template* (``/post/<int:post_id>``), every URL that
matches no route shares the one value ``UNMATCHED``, and methods outside the
standard set share ``OTHER_METHOD``.
"""
from __future__ import annotations

import os
from time import perf_counter

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from sqlalchemy import event
from sqlalchemy.engine import Engine

from . import metrics
from .active_users import LocalActiveUsers, RedisActiveUsers, Throttle, local_directory

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes come every few seconds from the kubelet; counting them would drown
# the request rate of a quiet blog and skew its latency percentiles.
UNTRACKED_RULES = frozenset({"/healthz", "/readyz"})
_STARTED = "aiblog.request_started"


def init_app(app: Flask) -> None:
    if not app.config["METRICS_ENABLED"]:
        return
    # A private registry: under gunicorn the values go to the multiprocess
    # files whatever the registry, and the master serves them; outside
    # gunicorn, a fresh registry per app lets tests create many apps.
    app.extensions["aiblog_metrics"] = RequestMetrics(
        app, path=None, registry=CollectorRegistry(), defaults_prefix=metrics.HTTP_PREFIX,
        buckets=metrics.HTTP_DURATION_BUCKETS)
    _time_db_queries()
    _track_active_users(app)


class RequestMetrics(PrometheusMetrics):
    """prometheus-flask-exporter with its request hook replaced.

    Why not the exporter as designed (``group_by="url_rule"``,
    ``excluded_paths``, ``GunicornPrometheusMetrics``): its hook labels by the
    raw ``request.method``, so any client can mint series (``FOO /``); with
    ``url_rule`` every unmatched URL gets the label ``None``; it adds an
    exceptions counter nobody reads; its multiprocess class serves
    ``/metrics`` itself, which ``metrics_server.py`` does on its own port;
    and, measured in-process in multiprocess mode, its hook costs 32 us a
    request (about 10% of a cached page under gunicorn) against this one's
    12 us, which caches the label children per (method, route, status).
    Metric names and labels are the exporter's (dashboards and alert rules
    read them). Latency is the time to the response's start: a streamed
    body (AI streaming) is not in it.
    """

    def export_defaults(self, buckets=None, group_by="path", latency_as_histogram=True,
                        prefix="flask", app=None, **kwargs):
        app = app or self.app
        # The names are metrics.py's (``defaults_prefix`` is its HTTP_PREFIX, so
        # the exporter's own naming would agree; they are not spelled twice).
        duration = Histogram(
            metrics.HTTP_DURATION, "HTTP request duration in seconds, by route template.",
            ("method", "url_rule", "status"), registry=self.registry, buckets=buckets or Histogram.DEFAULT_BUCKETS)
        total = Counter(metrics.HTTP_REQUESTS, "HTTP requests answered.", ("method", "status"),
                        registry=self.registry)
        children: dict[tuple[str, str, int], tuple] = {}

        def observe(method: str, rule: str, status: int, seconds: float) -> None:
            """One answered request (the page fast path records its answers here too)."""
            if method not in KNOWN_METHODS:
                method = OTHER_METHOD
            key = (method, rule, status)
            pair = children.get(key)
            if pair is None:  # label sets are bounded by routes x methods x statuses
                pair = children[key] = (duration.labels(*key), total.labels(method, status))
            pair[0].observe(seconds)
            pair[1].inc()

        def start_timer():
            request.environ[_STARTED] = perf_counter()

        def record(response):
            started = request.environ.get(_STARTED)
            url_rule = request.url_rule
            rule = url_rule.rule if url_rule is not None else UNMATCHED
            if started is not None and rule not in UNTRACKED_RULES:
                observe(request.method, rule, response.status_code, perf_counter() - started)
            return response

        self.observe = observe
        # First of all before_request hooks: a request another hook rejects
        # (a rate limit's 429) is still timed and counted.
        app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
        app.after_request(record)


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    if context is not None:
        # On the per-statement context, so a failing statement leaves nothing behind.
        context._aiblog_query_started = perf_counter()


def _after_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    started = getattr(context, "_aiblog_query_started", None)
    if started is not None:
        metrics.DB_QUERY_SECONDS.observe(perf_counter() - started)


def _time_db_queries() -> None:
    # Listeners on the Engine class cover every engine, once per process
    # however many apps are created.
    if not event.contains(Engine, "after_cursor_execute", _after_cursor_execute):
        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)


def _track_active_users(app: Flask) -> None:
    store = app.extensions["aiblog"].redis  # the app's fail-soft Redis pool (services.py)
    if store.enabled:
        tracker = RedisActiveUsers(store.call)
    elif os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # what prometheus_client itself reads
        tracker = LocalActiveUsers(local_directory(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    else:
        return  # one process and no metrics server: nobody would read it
    throttle = Throttle()

    @app.after_request
    def _record_active_user(response):
        user_id = _established_user_id()
        if user_id is not None and throttle.due(user_id):
            tracker.record(user_id)
        return response


def _established_user_id() -> int | None:
    """Who made the request, if the request already established it: an API
    token's user (``token_required`` keeps the ``User``, ``token_caller_required``
    a ``Caller``), or a session user that flask-login loaded for the view.
    Loading one here would cost a query on requests that need none."""
    user = g.get("api_caller") or g.get("api_user") or g.get("_login_user")
    return user.id if user is not None and user.is_authenticated else None
