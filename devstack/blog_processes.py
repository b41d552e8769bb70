"""The blog as real processes: its settings as an environment, ``aiblog``
commands (migrate, seed), the blog (or any app) under gunicorn with the
production config, and its RQ worker."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from .ports import free_port, http_ok
from .processes import REPO, THIS_PROJECT, Service, StackError, children_of, cpu_seconds, require_binary, rss_mb


def run_aiblog(*args: str, env: dict, timeout: float = 600) -> str:
    """``aiblog ARGS`` (migrate, seed...) to completion; its output, or a StackError carrying it."""
    done = subprocess.run([require_binary("aiblog", THIS_PROJECT), *args], env=env, cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode != 0:
        raise StackError(f"aiblog {' '.join(args)} failed:\n{done.stdout[-3000:]}")
    return done.stdout


def blog_environment(**settings: Any) -> dict:
    """The caller's environment without any blog setting, plus ``settings``."""
    from aiblog.config import SETTINGS

    own = {s.env for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update({k: str(v) for k, v in settings.items()})
    return env


class Gunicorn(Service):
    """An app (the blog unless ``app`` says otherwise) under the production
    serving config, ``aiblog.gunicorn_conf``, on free ports unless
    ``port``/``metrics_port`` are given."""

    def __init__(self, workdir: Path | str | None = None, env: dict | None = None, app: str = "aiblog:create_app()",
                 name: str = "blog", extra_args: list[str] | None = None, *, workers: int | None = None,
                 port: int | None = None, metrics_port: int | None = None, multiproc_dir: str | None = None,
                 console: bool = False):
        self.name = name
        super().__init__(workdir, console)
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.env = {**(blog_environment() if env is None else env), "PORT": str(self.port),
                    "METRICS_PORT": str(self.metrics_port)}
        # Without a metrics dir, gunicorn makes a private one and removes it when it stops.
        self.multiproc_dir = multiproc_dir
        if multiproc_dir:
            self.env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
        if workers is not None:
            self.env["WEB_CONCURRENCY"] = str(workers)
        self.app = app
        self.extra_args = extra_args or []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60) -> "Gunicorn":
        from aiblog.cli import GUNICORN_CONFIG

        self.spawn([require_binary("gunicorn", THIS_PROJECT), "--config", GUNICORN_CONFIG, *self.extra_args,
                     self.app], env=self.env)
        self.wait_ready(lambda: http_ok(self.url + "/healthz", timeout=2), timeout, f"{self.name} (gunicorn) /healthz")
        return self

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: rss for pid in self.worker_pids() if (rss := rss_mb(pid)) is not None}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its workers so far."""
        return sum(cpu_seconds(pid) for pid in [self.process.pid, *self.worker_pids()])


class RQWorker(Service):
    """``blog-worker``, the RQ worker of background AI jobs, with its metrics on a free port."""

    name = "blog-worker"

    def __init__(self, workdir: Path | str | None = None, env: dict | None = None, console: bool = False,
                 metrics_port: int | None = None):
        super().__init__(workdir, console)
        # 0 turns the worker's metrics server off.
        self.metrics_port = free_port() if metrics_port is None else metrics_port
        self.env = {**(env or blog_environment()), "WORKER_METRICS_PORT": str(self.metrics_port)}

    def start(self, timeout: float = 30) -> "RQWorker":
        import redis
        from rq import Worker

        self.spawn([require_binary("blog-worker", THIS_PROJECT)], env=self.env)
        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        # A worker has no port of its own to poll; it is ready once it has registered in Redis.
        self.wait_ready(lambda: any(w.pid == self.process.pid for w in Worker.all(connection=connection)),
                    timeout, "blog-worker to register in Redis")
        return self
