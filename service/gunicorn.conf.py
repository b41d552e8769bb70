"""gunicorn settings for aiblog. Everything comes from the environment.

Serving model: gevent workers. A request that waits on the LLM (generating,
streaming, or waiting for another request's single-flight result) parks a
greenlet, not an OS thread or a process, so thousands of slow AI requests
cannot take the capacity that page reads need. Pages themselves are mostly
served from the cache in well under a millisecond of CPU.
"""
import os

from aiblog import config as _config

_settings = _config.load()

bind = f"{_settings['BIND_HOST']}:{_settings['PORT']}"
workers = _settings["WEB_CONCURRENCY"]
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = _settings["WORKER_CONNECTIONS"]
backlog = 2048
keepalive = 5
timeout = 30
graceful_timeout = 20
# Restart workers now and then to cap slow memory growth; jitter avoids all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
proc_name = "aiblog"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    if worker_class == "gevent":
        # psycopg2 is a C extension: make its waits cooperative too.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
