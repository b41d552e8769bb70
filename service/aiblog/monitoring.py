"""Prometheus instrumentation of the app: request metrics, DB timing, active users.

Nothing here serves ``/metrics``: under gunicorn the master process does, on
its own port (``metrics_server.py``), so the public port never exposes them.

Label cardinality is bounded whatever clients send: requests are labelled by
the matched route *template* (``/post/<int:post_id>``), every URL that
matches no route shares the one value ``UNMATCHED``, and methods outside the
standard set share ``OTHER_METHOD``.
"""
from __future__ import annotations

import os
import time

from flask import Flask, Request, g, request
from prometheus_client import CollectorRegistry
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
UNTRACKED_PATHS = r"^/(healthz|readyz)$"


def init_app(app: Flask) -> None:
    if not app.config["METRICS_ENABLED"]:
        return
    _request_metrics(app)
    _time_db_queries()
    _track_active_users(app)


def url_rule(req: Request) -> str:
    """The label value (and, by this function's name, the label name) that
    groups requests: the route template, never the raw path."""
    rule = req.url_rule
    return rule.rule if rule is not None else UNMATCHED


def _request_metrics(app: Flask) -> None:
    # A private registry: under gunicorn the values go to the multiprocess
    # files whatever the registry, and the master serves them; outside
    # gunicorn, a fresh registry per app lets tests create many apps.
    registry = CollectorRegistry()
    exporter = PrometheusMetrics(
        app, path=None, registry=registry, defaults_prefix=metrics.HTTP_PREFIX,
        group_by=url_rule, buckets=metrics.HTTP_DURATION_BUCKETS,
        excluded_paths=UNTRACKED_PATHS,
    )
    app.extensions["aiblog_metrics"] = exporter

    # Registered after the exporter's hook, so it runs before it (Flask runs
    # after_request functions in reverse). Only requests whose method is not
    # a standard one are touched, and routing has already rejected those
    # (405/404) without running a view, so nothing else reads the method.
    @app.after_request
    def _bound_method_label(response):
        if request.method not in KNOWN_METHODS:
            request.method = OTHER_METHOD
        return response


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    if context is not None:
        # On the per-statement context, so a failing statement leaves nothing behind.
        context._aiblog_query_started = time.perf_counter()


def _after_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    started = getattr(context, "_aiblog_query_started", None)
    if started is not None:
        metrics.DB_QUERY_SECONDS.observe(time.perf_counter() - started)


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
        # Only identities the request already established: an API token's
        # user, or a session user that flask-login loaded for the view.
        # Loading one here would cost a query on requests that need none.
        user = g.get("api_user") or g.get("_login_user")
        if user is not None and user.is_authenticated and throttle.due(user.id):
            tracker.record(user.id)
        return response
