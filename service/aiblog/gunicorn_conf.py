"""gunicorn settings for aiblog (``aiblog serve`` runs gunicorn with
``--config python:aiblog.gunicorn_conf``). Everything comes from the settings
table in ``aiblog.config``, read from the environment.

Serving model: gevent workers. A request that waits on the LLM (generating,
streaming, or waiting for another request's single-flight result) parks a
greenlet, not an OS thread or a process, so thousands of slow AI requests
cannot take the capacity that page reads need. Pages themselves are mostly
served from the cache in well under a millisecond of CPU.
"""
import os
import sys

from aiblog import config as _config

try:
    _settings = _config.load()
    _config.refuse_public_default_secret(_settings)
except _config.ConfigError as _error:
    # One clear line instead of gunicorn's "Failed to read config file" traceback.
    sys.exit(f"aiblog: configuration error: {_error}")

bind = f"{_settings['BIND_HOST']}:{_settings['PORT']}"
workers = _settings["WEB_CONCURRENCY"]
worker_class = _settings["GUNICORN_WORKER_CLASS"]
worker_connections = _settings["WORKER_CONNECTIONS"]
backlog = 2048
keepalive = 5
timeout = 30
graceful_timeout = 20
# Off by default; GUNICORN_MAX_REQUESTS restarts each worker after that many
# requests to cap slow memory growth, with jitter so they do not all restart at once.
max_requests = _settings["GUNICORN_MAX_REQUESTS"]
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
accesslog = _settings["GUNICORN_ACCESS_LOG"] or None
errorlog = "-"
loglevel = _settings["LOG_LEVEL"]
proc_name = "aiblog"
forwarded_allow_ips = _settings["FORWARDED_ALLOW_IPS"]
# gunicorn 25.1+ opens a control socket in $XDG_RUNTIME_DIR or $HOME/.gunicorn:
# a write outside /tmp under a read-only root, and one shared path for every
# gunicorn of a user. Nothing here uses `gunicornc`, so there is none.
control_socket_disable = True


def post_fork(server, worker):
    if worker_class == "gevent":
        # psycopg2 is a C extension: make its waits cooperative too.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    if _metrics_server is not None:
        # The worker inherited the master's metrics socket; it must never answer on it.
        _metrics_server.socket.close()


def post_request(worker, req, environ, resp):
    if worker_class == "gevent":
        # Take turns. A gevent greenlet only yields when a read would block, and
        # on a keep-alive connection whose client answers fast the next request
        # is often already there: under saturation a few connections were served
        # back to back while the others waited. Measured with wrk (32
        # connections, bare hello): p50 0.6 ms but p99 1.2 s and requests timing
        # out; yielding once per request: p50 8 ms, p99 34 ms. After the
        # response, not before it: the request in hand is not delayed (reads
        # while 50 users generate: p95 13 ms against 35 ms when yielding first).
        # The bare hello ceiling runs under this config too.
        from gevent import sleep  # imported in the worker, after gevent's patching

        sleep(0)


def worker_exit(server, worker):
    # A gevent worker's interpreter shutdown clears gevent's thread module
    # before logging's weakref callbacks run, and each one printed "Exception
    # ignored ... TypeError: 'NoneType' object is not callable". The worker
    # has served its last request and gunicorn has logged its exit: leave with
    # the exit code gunicorn chose (a boot error must stay a boot error).
    leaving = sys.exc_info()[1]
    if worker_class == "gevent" and isinstance(leaving, SystemExit) and isinstance(leaving.code, (int, type(None))):
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(leaving.code or 0)


def post_worker_init(worker):
    # The app is loaded: move everything it made into the garbage collector's
    # permanent generation. A full collection otherwise walks those ~124,000
    # long-lived objects every time (63 ms measured here), and every request
    # of the worker waits for it.
    import gc

    gc.freeze()


# --- metrics (see aiblog/monitoring/metrics_server.py) ----------------------
# Workers write metric files into PROMETHEUS_MULTIPROC_DIR; the master serves
# their sum on METRICS_PORT. The hooks import prometheus_client only after the
# dir is exported, since it chooses its multiprocess mode when first imported.

_metrics_enabled = _settings["METRICS_ENABLED"]
_metrics_server = None
_metrics_dir_created = None


def on_starting(server):
    global _metrics_dir_created
    # The page-cache version counters: a private folder made here, in the
    # master, and named to the workers through the environment they inherit.
    from aiblog import runtime_dir

    os.environ[runtime_dir.RUNTIME_DIR_ENV] = runtime_dir.private_dir()
    if _metrics_enabled:
        from aiblog.monitoring import metrics_server

        directory, created = metrics_server.prepare_multiproc_dir(_settings["PROMETHEUS_MULTIPROC_DIR"])
        _metrics_dir_created = directory if created else None
    else:
        # An inherited value would switch prometheus_client to file mode for nothing.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def when_ready(server):
    global _metrics_server
    if _metrics_enabled:
        from aiblog.monitoring import metrics_server

        _metrics_server = metrics_server.start(_settings, os.getpid(), lambda: list(server.WORKERS))
        host, port = _metrics_server.server_address[:2]
        server.log.info("Metrics at http://%s:%s%s", host, port, metrics_server.METRICS_PATH)


def child_exit(server, worker):
    if _metrics_enabled:
        from aiblog.monitoring import metrics_server

        metrics_server.mark_worker_dead(worker.pid)


def on_exit(server):
    if _metrics_server is not None:
        _metrics_server.shutdown()
    if _metrics_dir_created:
        import shutil

        shutil.rmtree(_metrics_dir_created, ignore_errors=True)
