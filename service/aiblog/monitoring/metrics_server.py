"""The metrics server, run by the gunicorn master (see ``aiblog/gunicorn_conf.py``,
its hooks ``on_starting`` and ``when_ready``).

Workers write their metric values to files in ``PROMETHEUS_MULTIPROC_DIR``;
this server, on its own port (``METRICS_PORT``, path ``/metrics``), sums them
up and adds values that are computed at scrape time:

- ``blog_active_users``: distinct users seen in the last five minutes, from
  Redis (all replicas) or from this machine's shared directory;
- ``blog_jobs_queued``: length of the RQ queue of background generations;
- ``blog_process_*{pid, role}``: CPU and memory of the master and each live
  worker, read from /proc (multiprocess mode cannot collect the standard
  ``process_*`` metrics; a distinct name keeps dashboards from mixing in
  other programs' ones).

Import order matters: prometheus_client picks its multiprocess value class
when first imported, so ``prepare_multiproc_dir`` must run before anything
imports it: this module imports it lazily, and never imports ``aiblog.monitoring.metrics``
(that would create the worker metrics in the master too).
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import tempfile
import threading
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from .active_users import LocalActiveUsers, local_directory, trim_and_count_in_redis
from .redis_resp import RespClient

log = logging.getLogger(__name__)

# Computed here at scrape time. aiblog.monitoring.metrics has gauges of the same names
# (not imported here, see above); what workers write to them is dropped.
ACTIVE_USERS = "blog_active_users"
JOBS_QUEUED = "blog_jobs_queued"
SCRAPE_TIME_NAMES = frozenset({ACTIVE_USERS, JOBS_QUEUED})
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROC_OWNER_ENV = "AIBLOG_METRICS_MASTER_PID"  # same name in metrics.py (not imported here)
METRICS_PATH = "/metrics"
GENERATE_QUEUE = "generate"  # the RQ queue of background generations (aiblog.ai)
# rq keeps a queue as a list under this key; rq's own Queue.count is its LLEN.
RQ_QUEUE_KEY = f"rq:queue:{GENERATE_QUEUE}"


def prepare_multiproc_dir(configured: str) -> tuple[str, bool]:
    """Create and empty the multiprocess dir and export it for the workers.

    Returns the dir and whether we created it (and so may delete it at exit).
    Only metric files are removed from a configured dir, in case it is shared
    with something else by mistake.
    """
    created = not configured
    directory = configured or tempfile.mkdtemp(prefix="aiblog-metrics-")
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)
    shutil.rmtree(local_directory(directory), ignore_errors=True)
    os.environ[MULTIPROC_ENV] = directory
    os.environ[MULTIPROC_OWNER_ENV] = str(os.getpid())  # see metrics.py
    return directory, created


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's ``live*`` gauges (its counters stay: totals must not go down)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


# --- scrape-time collectors ------------------------------------------------

class ActiveUsersCollector:
    def __init__(self, count: Callable[[], int]):
        self.count = count

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            value = self.count()
        except Exception as exc:  # Redis down: no sample beats a wrong one
            log.warning("cannot count active users: %s", exc)
            return
        yield GaugeMetricFamily(ACTIVE_USERS, "Distinct logged-in users seen in the last 5 minutes.", value=value)


class JobsQueuedCollector:
    def __init__(self, redis: RespClient):
        self.redis = redis

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            value = self.redis.command("LLEN", RQ_QUEUE_KEY)
        except Exception as exc:
            log.warning("cannot read the job queue length: %s", exc)
            return
        yield GaugeMetricFamily(JOBS_QUEUED, "Background generation jobs waiting in the queue.", value=value)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_BOOT_TIME: float | None = None


def _boot_time() -> float:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        with open("/proc/stat") as stat:
            _BOOT_TIME = float(next(line for line in stat if line.startswith("btime")).split()[1])
    return _BOOT_TIME


def read_process(pid: int) -> dict[str, float] | None:
    """CPU seconds, memory and start time of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command name may contain spaces; fields start after its ')'.
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return {
        "cpu": (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS,  # utime + stime
        "rss": int(fields[21]) * _PAGE_SIZE,
        "vms": int(fields[20]),
        "start": _boot_time() + int(fields[19]) / _CLOCK_TICKS,
    }


class ProcessCollector:
    """``blog_process_*`` metrics for the master and every *live* worker, labelled
    by pid and role; a dead worker's series vanish at the next scrape."""

    def __init__(self, master_pid: int, worker_pids: Callable[[], Iterable[int]]):
        self.master_pid = master_pid
        self.worker_pids = worker_pids

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["pid", "role"]
        cpu = CounterMetricFamily("blog_process_cpu_seconds", "User and system CPU time spent, in seconds.", labels=labels)
        rss = GaugeMetricFamily("blog_process_resident_memory_bytes", "Resident memory size in bytes.", labels=labels)
        vms = GaugeMetricFamily("blog_process_virtual_memory_bytes", "Virtual memory size in bytes.", labels=labels)
        start = GaugeMetricFamily("blog_process_start_time_seconds", "Start time of the process since the unix epoch.",
                                  labels=labels)
        processes = [(self.master_pid, "master")] + [(pid, "worker") for pid in self.worker_pids()]
        for pid, role in processes:
            values = read_process(pid)
            if values is None:
                continue
            key = [str(pid), role]
            cpu.add_metric(key, values["cpu"])
            rss.add_metric(key, values["rss"])
            vms.add_metric(key, values["vms"])
            start.add_metric(key, values["start"])
        yield from (cpu, rss, vms, start)


class WorkerFilesCollector:
    """The workers' values summed over processes, minus the names computed at scrape time."""

    def __init__(self, directory: str):
        from prometheus_client.multiprocess import MultiProcessCollector

        self.files = MultiProcessCollector(None, directory)

    def collect(self):
        for family in self.files.collect():
            if family.name not in SCRAPE_TIME_NAMES:
                yield family


# --- the server ------------------------------------------------------------

class _QuietHandler(WSGIRequestHandler):
    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:  # the whole request is in: no longer a candidate for eviction
            self.server.answering(self.request)
        return parsed

    def log_message(self, format, *args):  # one line per scrape would flood the log
        pass


def _bounded_server_class(max_connections: int, connection_timeout: float):
    """A thread-per-connection WSGI server that cannot be pinned by slow clients.

    It runs in the gunicorn master, so each connection costs a master thread.
    Each connection's reads and writes time out after ``connection_timeout``;
    at most ``max_connections`` are handled at once. When all are taken, the
    oldest connection that has not yet sent its whole request is dropped to
    make room (a scraper sends its request at once), else the new one is.
    """
    from prometheus_client.exposition import ThreadingWSGIServer

    class BoundedWSGIServer(ThreadingWSGIServer):
        def __init__(self, *args, **kwargs):
            self._guard = threading.Lock()
            self._handling = 0
            self._silent: dict[socket.socket, None] = {}  # oldest first
            super().__init__(*args, **kwargs)

        def process_request(self, request, client_address):
            with self._guard:
                if self._handling >= max_connections:
                    if not self._silent:
                        self.shutdown_request(request)  # every slot is answering: refuse
                        return
                    oldest = next(iter(self._silent))
                    del self._silent[oldest]
                    _hang_up(oldest)  # its thread sees the end of input and exits
                self._handling += 1
                self._silent[request] = None
            request.settimeout(connection_timeout)  # each read and write of this connection
            super().process_request(request, client_address)

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                with self._guard:
                    self._handling -= 1
                    self._silent.pop(request, None)

        def answering(self, request) -> None:
            with self._guard:
                self._silent.pop(request, None)

        def handle_error(self, request, client_address):
            # A timed-out or dropped client is expected here, not worth a traceback.
            log.debug("metrics connection from %s ended early", client_address[0], exc_info=True)

    return BoundedWSGIServer


def _hang_up(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


def _only_metrics_path(metrics_app):
    def app(environ, start_response):
        if environ.get("PATH_INFO") == METRICS_PATH:
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"metrics are served at {METRICS_PATH}\n".encode()]

    return app


def build_registry(settings: dict, master_pid: int, worker_pids: Callable[[], Iterable[int]]):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(WorkerFilesCollector(os.environ[MULTIPROC_ENV]))
    registry.register(ProcessCollector(master_pid, worker_pids))
    if settings["REDIS_URL"]:
        client = RespClient(settings["REDIS_URL"], timeout=1.0)
        registry.register(ActiveUsersCollector(lambda: trim_and_count_in_redis(client.command)))
        registry.register(JobsQueuedCollector(client))
    else:
        local = LocalActiveUsers(local_directory(os.environ[MULTIPROC_ENV]))
        registry.register(ActiveUsersCollector(local.count))
    return registry


def start(settings: dict, master_pid: int, worker_pids: Callable[[], Iterable[int]]):
    """Serve ``/metrics`` on ``METRICS_BIND`` (default ``BIND_HOST``):``METRICS_PORT``
    from a daemon thread; returns the server (its socket is closed in workers)."""
    from prometheus_client import make_wsgi_app

    host = settings["METRICS_BIND"] or settings["BIND_HOST"]
    port = settings["METRICS_PORT"]
    if port == settings["PORT"]:
        raise RuntimeError(f"METRICS_PORT must differ from PORT ({port}): /metrics is never served publicly")
    registry = build_registry(settings, master_pid, worker_pids)
    try:
        server = make_server(host, port, _only_metrics_path(make_wsgi_app(registry)),
                             _bounded_server_class(settings["METRICS_MAX_CONNECTIONS"],
                                                   settings["METRICS_CONNECTION_TIMEOUT"]),
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise RuntimeError(f"cannot serve metrics on {host}:{port} ({exc.strerror}): set METRICS_PORT "
                           "to a free port, or METRICS_ENABLED=false") from None
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server
